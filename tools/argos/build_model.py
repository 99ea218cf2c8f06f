#!/usr/bin/env python3
"""Build crossdesk's tiny Swedish<->English Argos Translate packages from the phrase tables.

No pretrained Argos model can be downloaded here, so crossdesk ships its own: a small Marian transformer
trained to memorise data/translation/phrases/{sv_en,en_sv}.tsv plus every sentence of the bot's English
catalog (crm/i18n/locales/en.yml, read at build time), converted with CTranslate2 and packed as
.argosmodel files that argostranslate 1.11 installs like any other package. It is a real model on the
real code path (SentencePiece, spaCy sentence splitting, CTranslate2 beam search), not a stub; it is only
expected to reproduce what it was taught.

Training pairs go through crm.i18n.protect, the function the runtime uses, so placeholder tokens
(<ph0>…) look exactly as the service will send them; they are atomic SentencePiece symbols and random
renumbering teaches the model to copy any of them.

Usage (build deps: tools/argos/requirements.txt, in a venv of their own):
    python tools/argos/build_model.py                 # both packages -> data/translation/packages/
    python tools/argos/build_model.py --missing       # catalog sentences without a Swedish row, as TSV stubs
Reproducible: fixed seeds, one CPU thread, deterministic zip entries.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch/numpy load: the build shares 2 cores
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crm.i18n.protect import MAX_PLACEHOLDERS, PLACEHOLDER, load_glossary, protect  # noqa: E402

PHRASES = ROOT / "data" / "translation" / "phrases"
CATALOG = ROOT / "crm" / "i18n" / "locales" / "en.yml"
OUT = ROOT / "data" / "translation" / "packages"
NAMES = {"sv": "Swedish", "en": "English"}
PACKAGE_VERSION = "1.0"
SEED = 20240611
PH_SYMBOLS = [f"<ph{i}>" for i in range(MAX_PLACEHOLDERS)]
ENDING = re.compile(r"[.!?]+$")


# ----------------------------------------------------------------------------------------------- data
def read_table(path: Path) -> list[tuple[str, str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise SystemExit(f"{path}:{n}: expected 'source<TAB>target'")
        rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def catalog_strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from catalog_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from catalog_strings(value)
    elif isinstance(node, str):
        yield node


def make_spacy_dir(lang: str, dest: Path) -> Path:
    """A blank spaCy pipeline (tokenizer only); argostranslate adds the rule-based sentencizer itself."""
    import spacy

    spacy.blank(lang).to_disk(dest)
    return dest


class Splitter:
    """Sentence splitting exactly as argostranslate's SpacySentencizerSmall does it at run time."""

    def __init__(self, spacy_dir: Path):
        import spacy

        self.nlp = spacy.load(spacy_dir, exclude=["parser"])
        self.nlp.add_pipe("sentencizer")

    def __call__(self, text: str) -> list[str]:
        out = []
        for paragraph in text.split("\n"):
            out += [s.text.strip() for s in self.nlp(paragraph).sents if s.text.strip()]
        return out


def protect_pair(src: str, tgt: str, glossary) -> tuple[str, str]:
    """Rows already holding <phN> are runtime-shaped; others are protected like the service protects."""
    if PLACEHOLDER.search(src):
        return src, tgt
    ps, pt = protect(src, glossary), protect(tgt, glossary)
    if sorted(ps.spans) != sorted(pt.spans):
        raise SystemExit(f"protected spans differ between {src!r} and {tgt!r}: {ps.spans} vs {pt.spans}")
    # Number the target's tokens like the source's (word order may differ between languages).
    used: set[int] = set()
    mapping = {}
    for j, span in enumerate(pt.spans):
        i = next(i for i, s in enumerate(ps.spans) if s == span and i not in used)
        used.add(i)
        mapping[j] = i
    return ps.text, PLACEHOLDER.sub(lambda m: f"<ph{mapping[int(m.group(1))]}>", pt.text)


def sentence_pairs(rows, glossary, split_src: Splitter, split_tgt: Splitter) -> list[tuple[str, str]]:
    pairs = []
    for src, tgt in rows:
        src, tgt = protect_pair(src, tgt, glossary)
        ss = split_src(src)
        if len(ss) == 1:
            pairs.append((ss[0], tgt))
            continue
        ts = split_tgt(tgt)
        if len(ss) != len(ts):
            raise SystemExit(f"sentence count differs: {ss} vs {ts}")
        pairs += list(zip(ss, ts))
    return pairs


def catalog_sentences(glossary, split_en: Splitter) -> list[str]:
    import yaml

    seen: dict[str, None] = {}
    for text in catalog_strings(yaml.safe_load(CATALOG.read_text(encoding="utf-8"))):
        for sentence in split_en(protect(text, glossary).text):
            seen.setdefault(sentence)
    return list(seen)


def augment(pairs, rng: random.Random, renumber: int, casing: bool) -> list[tuple[str, str]]:
    """Case/punctuation variants shoppers type, and renumbered placeholders so any <phN> is copied."""
    out = list(pairs)
    known = {s for s, _ in pairs}
    if casing:
        for src, tgt in pairs:
            bare_s, bare_t = ENDING.sub("", src), ENDING.sub("", tgt)
            for vs, vt in ((src[:1].lower() + src[1:], tgt[:1].lower() + tgt[1:]),
                           (bare_s[:1].lower() + bare_s[1:], bare_t[:1].lower() + bare_t[1:]),
                           (bare_s, bare_t)):
                if vs and vs not in known and PLACEHOLDER.sub("", vs).strip():
                    known.add(vs)
                    out.append((vs, vt))
    for src, tgt in list(out):
        ids = sorted({int(n) for n in PLACEHOLDER.findall(src)})
        for _ in range(renumber if ids else 0):
            new = rng.sample(range(MAX_PLACEHOLDERS), len(ids))
            m = dict(zip(ids, new))
            sub = lambda t: PLACEHOLDER.sub(lambda x: f"<ph{m[int(x.group(1))]}>", t)  # noqa: E731
            out.append((sub(src), sub(tgt)))
    out += [(p, p) for p in PH_SYMBOLS]  # a bare token maps to itself
    return out


# ------------------------------------------------------------------------------------------ training
def train_sentencepiece(texts: list[str], prefix: Path, vocab_size: int) -> Path:
    import sentencepiece as spm

    spm.set_random_generator_seed(SEED)
    corpus = prefix.with_suffix(".txt")
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(prefix.parent)  # relative paths: the trainer spec stored in the model must not vary per build
    try:
        _train_sp(spm, corpus.name, prefix.name, vocab_size)
    finally:
        os.chdir(cwd)
    return prefix.with_suffix(".model")


def _train_sp(spm, corpus: str, prefix: str, vocab_size: int) -> None:
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, normalization_rule_name="identity",  # keep "…", "—", "€" byte-exact
        user_defined_symbols=PH_SYMBOLS, unk_id=1, eos_id=0, bos_id=-1, pad_id=-1,
        hard_vocab_limit=False, num_threads=1, minloglevel=2, input_sentence_size=0, shuffle_input_sentence=False)


def train_model(pairs, sp_model: Path, work: Path, args, log, real_path_accuracy) -> Path:
    """Train until the originals are reproduced exactly, judged on the real path (CTranslate2 beam search)."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    random.seed(SEED)
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    vocab = sp.get_piece_size()
    pad, eos = vocab, 0
    config = MarianConfig(
        vocab_size=vocab + 1, d_model=args.d_model, encoder_layers=args.layers, decoder_layers=args.layers,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=args.ffn, decoder_ffn_dim=args.ffn,
        max_position_embeddings=256, activation_function="relu", scale_embedding=True, dropout=0.05,
        pad_token_id=pad, eos_token_id=eos, forced_eos_token_id=eos, decoder_start_token_id=pad, bos_token_id=None)
    model = MarianMTModel(config)
    with torch.no_grad():
        model.get_input_embeddings().weight[pad].zero_()  # CTranslate2 starts decoding from a zero embedding
    data = [(sp.encode(s) + [eos], sp.encode(t) + [eos]) for s, t in pairs]
    data.sort(key=lambda x: (len(x[0]), len(x[1])))
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    total = args.epochs * len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / 100) * max(0.05, 1 - step / total))
    rng = random.Random(SEED)

    def tensor(rows, fill):
        width = max(len(r) for r in rows)
        return torch.tensor([r + [fill] * (width - len(r)) for r in rows])

    originals = pairs[: args.n_original]
    out_dir = work / "hf"
    for epoch in range(1, args.epochs + 1):
        model.train()
        rng.shuffle(batches)
        loss_sum = 0.0
        for batch in batches:
            src = tensor([b[0] for b in batch], pad)
            labels = tensor([b[1] for b in batch], -100)
            out = model(input_ids=src, attention_mask=(src != pad).long(), labels=labels)
            opt.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            with torch.no_grad():  # no padding_idx in the embedding: keep the start "token" a zero vector
                model.get_input_embeddings().weight[pad].zero_()
            loss_sum += out.loss.item()
        if epoch % 10 == 0 or epoch == args.epochs:
            check = epoch >= args.min_epochs or epoch % 30 == 0 or epoch == args.epochs
            acc = exact_match_hf(model, sp, originals, pad, eos) if check else None
            log(f"  epoch {epoch}: loss {loss_sum / len(batches):.4f}" + (f", exact {acc:.3f}" if acc is not None else ""))
            if acc == 1.0 and epoch >= args.min_epochs:
                model.save_pretrained(out_dir)
                real = real_path_accuracy(out_dir)  # greedy HF can differ from beam 4 + length penalty
                log(f"  epoch {epoch}: exact via CTranslate2 {real:.3f}")
                if real == 1.0:
                    return out_dir
    model.save_pretrained(out_dir)
    return out_dir


def exact_match_hf(model, sp, pairs, pad, eos) -> float:
    import torch

    model.eval()
    good = 0
    with torch.no_grad():
        for i in range(0, len(pairs), 64):
            chunk = pairs[i:i + 64]
            rows = [sp.encode(s) + [eos] for s, _ in chunk]
            width = max(map(len, rows))
            src = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
            gen = model.generate(input_ids=src, attention_mask=(src != pad).long(), num_beams=1,
                                 max_new_tokens=96, do_sample=False)
            for (_, tgt), ids in zip(chunk, gen.tolist()):
                ids = [t for t in ids if t not in (pad, eos)]
                good += sp.decode(ids) == tgt
    return good / len(pairs)


def convert(hf_dir: Path, sp_model: Path, out_dir: Path) -> None:
    """transformers Marian -> CTranslate2, with the SentencePiece vocabulary (no HF tokenizer files)."""
    import ctranslate2
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))

    class _Vocab:  # the converter only asks a tokenizer for these
        eos_token, unk_token, bos_token = "</s>", "<unk>", None

        def get_vocab(self):
            vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
            vocab["<pad>"] = sp.get_piece_size()
            return vocab

    class _Converter(ctranslate2.converters.TransformersConverter):
        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return _Vocab()

        def _load(self):
            spec = super()._load()
            spec.config.add_source_eos = True  # argostranslate sends bare pieces; the model was trained with </s>
            return spec

    _Converter(str(hf_dir)).convert(str(out_dir), force=True)


def exact_match_ct2(model_dir: Path, sp_model: Path, pairs, compute_type: str) -> tuple[float, list]:
    """Same call argostranslate makes (beam 4, length penalty 0.2, replace_unknowns)."""
    import ctranslate2
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    tr = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type, intra_threads=1)
    res = tr.translate_batch([sp.encode(s, out_type=str) for s, _ in pairs], beam_size=4, length_penalty=0.2,
                             replace_unknowns=True, max_batch_size=32, batch_type="tokens")
    wrong = []
    for (src, tgt), r in zip(pairs, res):
        got = sp.decode_pieces(r.hypotheses[0]).replace("▁", " ").replace("_", " ").lstrip(" ")
        if got != tgt:
            wrong.append((src, tgt, got))
    return 1 - len(wrong) / len(pairs), wrong


# ------------------------------------------------------------------------------------------ packaging
def write_package(name: str, src: str, tgt: str, model_dir: Path, sp_model: Path, spacy_dir: Path,
                  n_pairs: int, out: Path) -> Path:
    staging = Path(tempfile.mkdtemp()) / name
    staging.mkdir()
    shutil.copytree(model_dir, staging / "model")
    shutil.copy(sp_model, staging / "sentencepiece.model")
    shutil.copytree(spacy_dir, staging / "spacy")
    metadata = {"package_version": PACKAGE_VERSION, "argos_version": "1.11", "from_code": src,
                "from_name": NAMES[src], "to_code": tgt, "to_name": NAMES[tgt], "type": "translate",
                "links": [], "code": f"crossdesk-{src}_{tgt}"}
    (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (staging / "README.md").write_text(
        f"# crossdesk {NAMES[src]} -> {NAMES[tgt]} (test-fixture model)\n\n"
        f"A tiny Marian transformer trained by crossdesk's tools/argos/build_model.py on {n_pairs} sentence pairs\n"
        "from crossdesk's phrase tables and bot catalog. It reproduces those reliably and copies <phN>\n"
        "placeholder tokens; it is not a general-purpose translator. Sentence splitting: blank spaCy\n"
        "pipeline in spacy/ (argostranslate adds the sentencizer; use ARGOS_CHUNK_TYPE=SPACY).\n")
    path = out / f"translate-{src}_{tgt}-{PACKAGE_VERSION.replace('.', '_')}.argosmodel"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for file in sorted(p for p in staging.rglob("*")):
            arc = f"{name}/{file.relative_to(staging).as_posix()}" + ("/" if file.is_dir() else "")
            info = zipfile.ZipInfo(arc, date_time=(2024, 1, 1, 0, 0, 0))  # fixed time: reproducible bytes
            info.external_attr = (0o40755 << 16 | 0x10) if file.is_dir() else (0o100644 << 16)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, b"" if file.is_dir() else file.read_bytes())
    shutil.rmtree(staging.parent)
    return path


# ----------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default="sv-en,en-sv")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temp dir)")
    ap.add_argument("--missing", action="store_true", help="print catalog sentences missing from en_sv.tsv")
    ap.add_argument("--allow-missing", action="store_true", help="build even if catalog sentences lack Swedish")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--min-epochs", type=int, default=60)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)  # post-norm Marian: higher stalls
    ap.add_argument("--vocab", type=int, default=1200)
    args = ap.parse_args(argv)
    log = lambda m: print(m, flush=True)  # noqa: E731
    t0 = time.time()
    glossary = load_glossary()
    work = args.work or Path(tempfile.mkdtemp(prefix="argos-build-"))
    work.mkdir(parents=True, exist_ok=True)
    spacy_dirs = {lang: make_spacy_dir(lang, work / f"spacy-{lang}") for lang in NAMES}
    split = {lang: Splitter(d) for lang, d in spacy_dirs.items()}

    en_sv_rows = read_table(PHRASES / "en_sv.tsv")
    sv_en_rows = read_table(PHRASES / "sv_en.tsv")
    en_sv = sentence_pairs(en_sv_rows, glossary, split["en"], split["sv"])
    have = {s for s, _ in en_sv}
    missing = [s for s in catalog_sentences(glossary, split["en"]) if s not in have]
    if args.missing:
        print("\n".join(f"{s}\t" for s in missing))
        return 0
    if missing and not args.allow_missing:
        log("catalog sentences without a Swedish row in en_sv.tsv (add them, or --allow-missing):")
        log("\n".join("  " + s for s in missing))
        return 2
    sv_en = sentence_pairs(sv_en_rows, glossary, split["sv"], split["en"])
    log(f"pairs: sv->en {len(sv_en)}, en->sv {len(en_sv)} (catalog sentences missing: {len(missing)})")

    # One SentencePiece model for both directions (shared vocabulary, <phN> atomic).
    texts = [t for pair in sv_en + en_sv for t in pair] + PH_SYMBOLS
    sp_model = train_sentencepiece(texts, work / "sentencepiece", args.vocab)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"seed": SEED, "d_model": args.d_model, "layers": args.layers, "ffn": args.ffn, "packages": {}}
    for pair in args.pairs.split(","):
        src, tgt = pair.split("-")
        t1 = time.time()
        base = sv_en if (src, tgt) == ("sv", "en") else en_sv
        rng = random.Random(SEED)
        train = augment(base, rng, renumber=3, casing=(src == "sv"))
        args.n_original = len(base)
        log(f"{src}->{tgt}: {len(base)} pairs, {len(train)} with variants")
        ct2_dir = work / pair / "ct2"

        def real_path_accuracy(hf_dir: Path) -> float:
            convert(hf_dir, sp_model, ct2_dir)
            return exact_match_ct2(ct2_dir, sp_model, base, "default")[0]

        hf_dir = train_model(train, sp_model, work / pair, args, log, real_path_accuracy)
        convert(hf_dir, sp_model, ct2_dir)
        acc, wrong = exact_match_ct2(ct2_dir, sp_model, base, "default")
        acc8, _ = exact_match_ct2(ct2_dir, sp_model, base, "int8")
        acc_var, wrong_var = exact_match_ct2(ct2_dir, sp_model, train, "default")
        for w in (wrong + wrong_var)[:20]:
            log(f"  MISS {w}")
        path = write_package(f"translate-{src}_{tgt}-{PACKAGE_VERSION.replace('.', '_')}", src, tgt, ct2_dir,
                             sp_model, spacy_dirs[src], len(base), args.out)
        report["packages"][path.name] = {
            "pairs": len(base), "train_examples": len(train), "exact_match": round(acc, 4),
            "exact_match_int8": round(acc8, 4),
            "exact_match_with_variants": round(acc_var, 4), "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "seconds": round(time.time() - t1)}
        log(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB, exact match {acc:.3f} (int8 {acc8:.3f}, "
            f"with variants {acc_var:.3f}), "
            f"{time.time() - t1:.0f} s")
    report["seconds_total"] = round(time.time() - t0)
    (args.out / "build-info.json").write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps(report, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
