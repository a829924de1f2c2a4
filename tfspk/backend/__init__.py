"""tfspk.backend"""
