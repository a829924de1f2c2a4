"""tfspk.bin"""
