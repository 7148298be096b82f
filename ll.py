import json, glob, os, re, statistics as st, sys
from collections import defaultdict
g = defaultdict(list)
for d in glob.glob(sys.argv[1] + "/default/*"):
    c = json.load(open(d + "/config.json")) if os.path.exists(d + "/config.json") else None
    s = d + "/results_summary.json"
    if not c or not os.path.exists(s): continue
    s = json.load(open(s))
    if "log_loss" not in s:
        p = json.load(open(d + "/test_predictions.json")); import math
        s["log_loss"] = -sum(math.log(max(1e-12, q if y else 1-q)) for q, y in zip(p["prob"], p["label"]))/len(p["prob"])
    weak = c.get("weak_model_size")
    g[(c["model_size"], weak or "-", c["loss"])].append((s["log_loss"], s.get("auroc")))
for k in sorted(g):
    if "random" in k[0]: continue
    v = g[k]; print(k, len(v), "logloss %.3f" % st.mean(x[0] for x in v), "auroc %.4f" % st.mean(x[1] for x in v))
