"""tfspk.losses"""
