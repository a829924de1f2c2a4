"""What ``tfspk-embed``, ``tfspk-enroll`` and ``tfspk-identify`` do: embeddings of wav files / a wav.scp into
ark, npy or text; pair comparison; speaker models; ranked identification."""
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
                writer.write(key, embedder.embed(samples, rate, key, scale="int16"))
        return len(pairs)
    vectors = []
    for key, value in pairs:
        samples, rate = read_audio(value)
        vectors.append(embedder.embed(samples, rate, key, scale="int16"))
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


def compare(embedder: Embedder, first: str, second: str, target_prior: float | None = None) -> dict:
    """Score of two wav files; with a calibration also the LLR and the Bayes decision at ``target_prior``
    (default: the prior the calibration was trained for)."""
    prior = embedder.target_prior if target_prior is None else target_prior
    threshold = bayes_threshold(prior)
    score = embedder.score(embedder.embed_file(first), embedder.embed_file(second))
    llr = embedder.llr(score)
    return {"score": score, "llr": llr, "threshold": threshold if llr is not None else None, "target_prior": prior,
            "scoring": embedder.scoring,
            "decision": None if llr is None else ("target" if llr >= threshold else "nontarget")}


def format_comparison(result: dict) -> str:
    lines = [f"score {result['score']:.6f} ({result['scoring']})"]
    if result["llr"] is None:
        lines.append("llr none (the export has no calibration: run tfspk-export --calibration=<file>)")
        lines.append("decision none")
    else:
        lines.append(f"llr {result['llr']:.6f}")
        lines.append(f"decision {result['decision']} (Bayes threshold {result['threshold']:.4f} = "
                     f"log((1-P)/P) at target prior P={result['target_prior']:g})")
    return "\n".join(lines)


def log_done(count: int, output: str) -> None:
    cli.log(f"wrote {count} embeddings to {output}")


# ---------------------------------------------------------------------- enrolment and identification
def _embed_table(embedder: Embedder, pairs: list[tuple[str, str]]) -> dict:
    """``{key: embedding}`` of ``(key, wav.scp value)`` pairs."""
    from tfspk.io.audio import read_audio
    out = {}
    for key, value in pairs:
        samples, rate = read_audio(value)
        out[key] = embedder.embed(samples, rate, key, scale="int16")
    return out


def read_speaker_list(path: str) -> dict[str, list[str]]:
    """``<speaker> <wav> [<wav> ...]`` lines (a spk2utt whose utterances are wav files)."""
    from tfspk.io.table import read_table
    speakers = {}
    for speaker, rest in read_table(path, sorted_keys=False):
        speakers[speaker] = rest.split()
    return speakers


def enroll(embedder: Embedder, spk2utt: str, inputs: str | None, out_dir: str, vectors: bool = False,
           file_list: bool = False):
    """``tfspk-enroll``: speaker models from ``spk2utt`` + a wav.scp (or an embeddings rspecifier with
    ``vectors``), or from a list ``<speaker> <wav> ...`` (``file_list``), written to ``out_dir``."""
    from tfspk.backend import tables
    from tfspk.backend.speakers import SpeakerModels
    if file_list:
        listed = read_speaker_list(spk2utt)
        pairs = [(f"{spk}/{n}", wav) for spk, wavs in listed.items() for n, wav in enumerate(wavs)]
        spk2utt_table = {spk: [f"{spk}/{n}" for n in range(len(wavs))] for spk, wavs in listed.items()}
        embeddings, where = _embed_table(embedder, pairs), spk2utt
    else:
        spk2utt_table = tables.read_spk2utt(spk2utt)
        if vectors:
            keys, matrix = tables.load_vectors(inputs)
            embeddings = dict(zip(keys, matrix))
        else:
            wanted = {utt for utts in spk2utt_table.values() for utt in utts}
            table = dict(wav_inputs([inputs if ":" in inputs.split("/")[0] else f"scp:{inputs}"]))
            missing = sorted(wanted - set(table))
            if missing:
                raise ToolError(f"{inputs} has no entry for utterance '{missing[0]}' of {spk2utt} "
                                f"({len(missing)} missing)")
            embeddings = _embed_table(embedder, [(utt, table[utt]) for utt in sorted(wanted)])
        where = f"{spk2utt} with {inputs}"
    models = SpeakerModels.from_embeddings(spk2utt_table, embeddings, where)
    embedder.scorer.check_dim(models.means.shape[1], f"the embeddings of {where}")
    if models.means.shape[1] != embedder.embedding_dim:
        raise ToolError(f"{where}: embeddings of dimension {models.means.shape[1]}, the model's have "
                        f"{embedder.embedding_dim}")
    models.write(out_dir)
    cli.log(f"enrolled {len(models.speakers)} speakers from {int(models.counts.sum())} utterances into "
            f"{out_dir} (spk_xvector.scp, num_utts.ark)")
    return models


def identify(embedder: Embedder, models_dir: str, inputs: list[str], output: str, vectors: bool = False,
             top_n: int = 5, threshold: float | None = None, target_prior: float | None = None) -> list:
    """``tfspk-identify``: ranked speakers of every input, one line each (``-``: stdout)."""
    from tfspk.backend import tables
    from tfspk.backend.speakers import SpeakerModels, format_identification
    from tfspk.backend.speakers import identify as rank
    from tfspk.io.atomic import atomic_open
    models = SpeakerModels.read(models_dir)
    if models.means.shape[1] != embedder.embedding_dim:
        raise ToolError(f"{models_dir}: speakers of dimension {models.means.shape[1]}, the model's embeddings "
                        f"have {embedder.embedding_dim}")
    rule = embedder.decision_rule(threshold, target_prior)
    if vectors:
        if len(inputs) != 1:
            raise ToolError("with --vectors=true give one embeddings rspecifier")
        keys, matrix = tables.load_vectors(inputs[0])
    else:
        pairs = wav_inputs(inputs)
        if not pairs:
            raise ToolError(f"no audio to identify in {' '.join(inputs)}")
        table = _embed_table(embedder, pairs)
        keys, matrix = list(table), np.stack(list(table.values()))
    results = rank(embedder.scorer, models, keys, matrix, top_n=top_n, **rule)
    text = "".join(format_identification(result) + "\n" for result in results)
    if output == "-":
        print(text, end="")
    else:
        with atomic_open(output) as handle:
            handle.write(text)
    accepted = sum(result.decision != "none" for result in results)
    cli.log(f"identified {len(results)} inputs against {len(models.speakers)} speakers ({embedder.scoring} scores; "
            f"{len(results) - accepted} below the threshold: none)")
    return results
