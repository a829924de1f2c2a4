"""tfspk.nnet"""
