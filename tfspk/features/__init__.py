"""tfspk.features"""
