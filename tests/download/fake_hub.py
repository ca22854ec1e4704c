#!/usr/bin/env python3
"""A small Hugging Face compatible hub for the download tests, on loopback only.

Serves the tree API and /resolve/ files for every repository the downloader knows, filled
with small generated files under the real names. The revision selects a behaviour:
  main     normal (Range requests honoured)
  cut      the first request for each LFS file sends half of it, then drops the connection
  corrupt  LFS files are served with one byte changed (sha256 mismatch)
  nofile   the listing is fine but every file answers 404
  evil     the listing also names a path that climbs out of the destination folder
Any other revision, or an unknown repository, answers 404. Prints the port on stdout.
"""
import hashlib, http.server, json, socketserver, sys, threading

REPOS = {
    "Wan-AI/Wan2.1-T2V-1.3B": ["diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth",
                               "Wan2.1_VAE.pth", "config.json", "google/umt5-xxl/spiece.model",
                               "google/umt5-xxl/tokenizer_config.json", "README.md", "assets/x.png"],
    "Wan-AI/Wan2.1-T2V-14B": ["diffusion_pytorch_model-00001-of-00002.safetensors",
                              "diffusion_pytorch_model-00002-of-00002.safetensors",
                              "diffusion_pytorch_model.safetensors.index.json",
                              "models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth", "config.json",
                              "google/umt5-xxl/spiece.model"],
}
for name in ("1.3B", "14B"):
    REPOS["Wan-AI/Wan2.1-T2V-%s-Diffusers" % name] = [
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model-00001-of-00001.safetensors", "tokenizer/spiece.model",
        "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]

# sand-ai/MAGI-1: the official layout (variant folders, the shared T5 and VAE, and what a
# variant download must leave alone: the other variants, the code assets).
REPOS["sand-ai/MAGI-1"] = [
    "README.md", "figures/logo_black.png",
    "ckpt/magi/4.5B_distill/inference_weight.distill/model-00001-of-00002.safetensors",
    "ckpt/magi/4.5B_distill/inference_weight.distill/model-00002-of-00002.safetensors",
    "ckpt/magi/4.5B_distill/inference_weight.distill/model.safetensors.index.json",
    "ckpt/magi/4.5B_base/inference_weight/model-00001-of-00002.safetensors",
    "ckpt/magi/4.5B_base/inference_weight/model.safetensors.index.json",
    "ckpt/magi/24B_base/inference_weight/model-00001-of-00008.safetensors",
    "ckpt/t5/t5-v1_1-xxl/pytorch_model-00001-of-00002.bin",
    "ckpt/t5/t5-v1_1-xxl/pytorch_model-00002-of-00002.bin",
    "ckpt/t5/t5-v1_1-xxl/pytorch_model.bin.index.json", "ckpt/t5/t5-v1_1-xxl/config.json",
    "ckpt/t5/t5-v1_1-xxl/spiece.model",
    "ckpt/vae/config.json", "ckpt/vae/diffusion_pytorch_model.safetensors"]

def content(repo, path):
    """Deterministic bytes; 'LFS' files (weights) are larger than small json files."""
    size = 300 if path.endswith(".json") or path.endswith(".md") else 200_000 + len(path) * 997
    seed = hashlib.sha256((repo + "/" + path).encode()).digest()
    out = bytearray()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:size])

def is_lfs(path):
    return not (path.endswith(".json") or path.endswith(".md"))

cut_done = set()
lock = threading.Lock()

class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_plain(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            if "/tree/" not in rest:
                return self.send_plain(404, b"not found")
            repo, rev = rest.split("/tree/", 1)
            if repo not in REPOS or rev not in ("main", "cut", "corrupt", "nofile", "evil"):
                return self.send_plain(404, b'{"error":"Repository not found"}', "application/json")
            items = []
            for p in REPOS[repo]:
                data = content(repo, p)
                item = {"type": "file", "path": p, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                if is_lfs(p):
                    item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                items.append(item)
            if rev == "evil":
                items.append({"type": "file", "path": "google/umt5-xxl/../../../escape.bin", "size": 3,
                              "oid": "0" * 40})
            dirs = sorted({p.rsplit("/", 1)[0] for p in REPOS[repo] if "/" in p})
            items += [{"type": "directory", "path": d, "size": 0, "oid": "0" * 40} for d in dirs]
            return self.send_plain(200, json.dumps(items).encode(), "application/json")
        if "/resolve/" in path:
            repo, rest = path[1:].split("/resolve/", 1)
            rev, fpath = rest.split("/", 1)
            if repo not in REPOS or fpath not in REPOS[repo] or rev == "nofile":
                return self.send_plain(404, b"Entry not found")
            data = content(repo, fpath)
            if rev == "corrupt" and is_lfs(fpath):
                data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(data):
                    return self.send_plain(416, b"")
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.end_headers()
            key = (repo, fpath)
            with lock:
                cut = rev == "cut" and is_lfs(fpath) and key not in cut_done
                if cut:
                    cut_done.add(key)
            if cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)
            return
        self.send_plain(404, b"not found")

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Hub)
    print(server.server_address[1], flush=True)
    server.serve_forever()
