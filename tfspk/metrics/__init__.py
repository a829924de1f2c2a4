"""tfspk.metrics"""
