"""tfspk.train"""
