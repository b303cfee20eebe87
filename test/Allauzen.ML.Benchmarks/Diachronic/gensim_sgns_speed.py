#!/usr/bin/python3
"""gensim skip-gram speed on a dated TSV corpus (year<TAB>[package<TAB>]tokens, gz or plain): the reference for
DiachronicBenchmarks / `diachronic --speed true`.  Times only Word2Vec.train() (build_vocab excluded), as the notes do.

usage: /usr/bin/python3 gensim_sgns_speed.py CORPUS.tsv.gz [EPOCHS] [WORKERS]
Settings: sg=1, vector_size=100, window=5, negative=5, hs=0, min_count=5, sample=1e-3, seed=1 (Debian python3-gensim).
"""
import gzip, sys, time, resource
from gensim.models import Word2Vec

path = sys.argv[1]
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
op = gzip.open if path.endswith(".gz") else open
with op(path, "rt", encoding="utf-8") as f:
    sents = [line.rstrip("\n").split("\t")[-1].split() for line in f if line.strip()]
tokens = sum(len(s) for s in sents)
m = Word2Vec(sg=1, vector_size=100, window=5, negative=5, hs=0, min_count=5, sample=1e-3, workers=workers, seed=1)
m.build_vocab(sents)
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
eff, raw = m.train(sents, total_examples=len(sents), epochs=epochs)
dt = time.perf_counter() - t0
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
print(f"gensim {sys.modules['gensim'].__version__}: sentences={len(sents)} tokens={tokens} V={len(m.wv)} epochs={epochs} workers={workers}")
print(f"train {dt:.2f} s, raw words/s {tokens * epochs / dt:,.0f}, effective words/s {eff / dt:,.0f}, raw words per CPU-s {tokens * epochs / cpu:,.0f}")
