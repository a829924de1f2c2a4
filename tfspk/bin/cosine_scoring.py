"""tfspk-cosine-scoring: cosine similarity of trials (dot products of length-normalised vectors)."""
from tfspk import cli
from tfspk.bin.ivector_compute_dot_products import similarity_tool

USAGE = """tfspk-cosine-scoring [options] <trials-in> <enroll-rspecifier> <test-rspecifier> <scores-out>
e.g.: tfspk-cosine-scoring data/test/trials scp:exp/xvectors_test/xvector.scp scp:exp/xvectors_test/xvector.scp scores"""

_main = similarity_tool(USAGE, "Cosine similarity cos(u, v) = <u, v> / (|u| |v|) of the trials, same arguments "
                        "and output as ivector-compute-dot-products.", "cosine")


def main():
    cli.run_tool(_main)
