"""What ``tfspk-embed`` does: embeddings of wav files / a wav.scp into ark, npy or text; pair comparison."""
from __future__ import annotations

import os

import numpy as np

from tfspk import cli
from tfspk.errors import ToolError
from tfspk.export.embedder import Embedder, bayes_threshold

OUTPUT_FORMATS = ("ark", "npy", "text")


def wav_inputs(inputs: list[str]) -> list[tuple[str, str]]:
    """[(key, wav.scp value)]: one ``scp:wav.scp`` rspecifier, or wav files keyed by their base name."""
    from tfspk.io.table import read_table
    if len(inputs) == 1 and inputs[0].split(":", 1)[0].split(",")[0] == "scp":
        location = inputs[0].split(":", 1)[1]
        return read_table(location, sorted_keys=False)
    pairs, seen = [], {}
    for path in inputs:
        if ":" in path.split("/")[0] and path.split(":", 1)[0].split(",")[0] in ("ark", "scp"):
            raise ToolError(f"'{path}': give either one scp:wav.scp rspecifier or wav files")
        key = os.path.splitext(os.path.basename(path))[0]
        if key in seen:
            raise ToolError(f"wav files {seen[key]} and {path} give the same key '{key}'")
        seen[key] = path
        pairs.append((key, path))
    return pairs


def embed_to_output(embedder: Embedder, inputs: list[str], output: str, output_format: str = "ark") -> int:
    """Embed every input and write ``output``: a Kaldi wspecifier (ark), a ``.npy`` matrix [N, D] with
    the keys in ``<output>.keys`` (npy), or ``key  [ v1 v2 ... ]`` lines (text, ``-`` for stdout)."""
    from tfspk.io.ark import ArchiveWriter
    from tfspk.io.atomic import atomic_open
    from tfspk.io.audio import read_audio
    if output_format not in OUTPUT_FORMATS:
        raise ToolError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}, got '{output_format}'")
    pairs = wav_inputs(inputs)
    if not pairs:
        raise ToolError(f"no audio to embed in {' '.join(inputs)}")
    if output_format == "ark":   # stream: vectors are written as they come, the files appear at the end
        with ArchiveWriter(output) as writer:
            for key, value in pairs:
                samples, rate = read_audio(value)
                writer.write(key, embedder.embed(samples, rate, key))
        return len(pairs)
    vectors = []
    for key, value in pairs:
        samples, rate = read_audio(value)
        vectors.append(embedder.embed(samples, rate, key))
    if output_format == "npy":
        with atomic_open(output + ".keys") as keys, atomic_open(output, "wb") as handle:
            np.save(handle, np.stack(vectors))
            keys.write("".join(f"{key}\n" for key, _ in pairs))
        return len(pairs)
    lines = "".join(f"{key}  [ {' '.join(f'{v:g}' for v in vector)} ]\n" for (key, _), vector in zip(pairs, vectors))
    if output == "-":
        print(lines, end="")
    else:
        with atomic_open(output) as handle:
            handle.write(lines)
    return len(pairs)


def compare(embedder: Embedder, first: str, second: str, target_prior: float = 0.01) -> dict:
    """Score of two wav files; with a calibration also the LLR and the Bayes decision at ``target_prior``."""
    threshold = bayes_threshold(target_prior)
    score = embedder.score(embedder.embed_file(first), embedder.embed_file(second))
    llr = embedder.llr(score)
    result = {"score": score, "llr": llr, "threshold": threshold if llr is not None else None,
              "decision": None if llr is None else ("target" if llr >= threshold else "nontarget")}
    return result


def format_comparison(result: dict, target_prior: float) -> str:
    lines = [f"score {result['score']:.6f}"]
    if result["llr"] is None:
        lines.append("llr none (the export has no calibration: run tfspk-export --calibration=<file>)")
        lines.append("decision none")
    else:
        lines.append(f"llr {result['llr']:.6f}")
        lines.append(f"decision {result['decision']} (Bayes threshold {result['threshold']:.4f} = "
                     f"log((1-P)/P) at target prior P={target_prior:g})")
    return "\n".join(lines)


def log_done(count: int, output: str) -> None:
    cli.log(f"wrote {count} embeddings to {output}")
