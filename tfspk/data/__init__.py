"""tfspk.data"""
