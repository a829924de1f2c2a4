"""tfspk.extract"""
