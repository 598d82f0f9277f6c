"""A REAL OpenAI-compatible backend for tests/inference.rs: llama.cpp's server (xllamacpp wheel)
with SmolLM2-135M-Instruct, ONE thread (the test machines have two cores, shared).

Usage: llama_backend.py MODEL_GGUF PORT
Serves until the process ends (SIGTERM stops it cleanly). The test polls /health.
"""
import sys
import time

import xllamacpp

params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.model_alias = {"smollm2-135m-instruct"}
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[2])
params.n_ctx = 2048
params.n_parallel = 1
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
params.use_jinja = True
server = xllamacpp.Server(params)
while True:
    time.sleep(3600)
