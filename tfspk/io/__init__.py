"""tfspk.io"""
