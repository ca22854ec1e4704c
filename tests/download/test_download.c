/*  test_download.c - the model downloader against a local fake hub (fake_hub.py):
    full download, skip when present, shard patterns, resume after a cut, sha256 mismatch,
    404s, an unsafe listing, and an unreachable hub.
*/
#include "vdgx_download.h"

#include <assert.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int s_failures;
#define CHECK(cond, ...) do { if (!(cond)) { s_failures++; \
    fprintf (stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
    fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); } } while (0)

static pid_t s_hub_pid;

static int
s_start_hub (const char *script)
{
    int fds [2];
    if (pipe (fds) != 0)
        return -1;
    s_hub_pid = fork ();
    if (s_hub_pid < 0)
        return -1;
    if (s_hub_pid == 0) {
        dup2 (fds [1], STDOUT_FILENO);
        close (fds [0]);
        execlp ("python3", "python3", script, (char *) NULL);
        _exit (127);
    }
    close (fds [1]);
    char line [32] = "";
    FILE *in = fdopen (fds [0], "r");
    if (!fgets (line, sizeof line, in))
        return -1;
    fclose (in);
    return atoi (line);
}

static long
s_size (const char *dir, const char *rel)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/%s", dir, rel);
    struct stat st;
    return stat (path, &st) == 0? (long) st.st_size: -1;
}

static void
s_rmtree (const char *path)
{
    char cmd [1100];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system (cmd) != 0)
        fprintf (stderr, "warning: could not remove %s\n", path);
}

static int
s_download (const char *endpoint, const char *dir, const char *model, const char *rev,
            char *error, size_t error_size, uint64_t *fetched)
{
    vdgx_download_t *dl = vdgx_download_new (endpoint, "test-token", dir);
    vdgx_download_set_progress (dl, false);
    int rc = vdgx_download_model (dl, vdgx_model_source_find (model), rev);
    snprintf (error, error_size, "%s", vdgx_download_error (dl));
    if (fetched)
        *fetched = vdgx_download_bytes_fetched (dl);
    vdgx_download_destroy (&dl);
    return rc;
}

int
main (int argc, char **argv)
{
    const char *script = argc > 1? argv [1]: "fake_hub.py";
    int port = s_start_hub (script);
    if (port <= 0) {
        fprintf (stderr, "cannot start the fake hub (python3 %s)\n", script);
        return 1;
    }
    char endpoint [64], dir [256], error [512];
    snprintf (endpoint, sizeof endpoint, "http://127.0.0.1:%d/", port);
    snprintf (dir, sizeof dir, "/tmp/vdgx-download-test-%d", (int) getpid ());
    uint64_t fetched = 0;

    //  1. A full download keeps only the wanted files, verified, with no .part left.
    int rc = s_download (endpoint, dir, "wan21-1.3b", "main", error, sizeof error, &fetched);
    CHECK (rc == 0, "%s", error);
    CHECK (s_size (dir, "diffusion_pytorch_model.safetensors") > 0, "dit missing");
    CHECK (s_size (dir, "google/umt5-xxl/spiece.model") > 0, "tokenizer folder missing");
    CHECK (s_size (dir, "config.json") == 300, "config size");
    CHECK (s_size (dir, "README.md") == -1, "unwanted file fetched");
    CHECK (s_size (dir, "assets/x.png") == -1, "unwanted folder fetched");
    CHECK (s_size (dir, "Wan2.1_VAE.pth.part") == -1, "part file left");
    CHECK (fetched > 600000, "fetched %llu", (unsigned long long) fetched);

    //  2. Running again fetches nothing: every file is there and verified.
    rc = s_download (endpoint, dir, "wan21-1.3b", "main", error, sizeof error, &fetched);
    CHECK (rc == 0 && fetched == 0, "rc %d fetched %llu %s", rc, (unsigned long long) fetched, error);
    s_rmtree (dir);

    //  3. Shard patterns (14B) and a diffusers layout.
    rc = s_download (endpoint, dir, "wan21-14b", "main", error, sizeof error, NULL);
    CHECK (rc == 0, "%s", error);
    CHECK (s_size (dir, "diffusion_pytorch_model-00002-of-00002.safetensors") > 0, "shard missing");
    CHECK (s_size (dir, "diffusion_pytorch_model.safetensors.index.json") > 0, "index missing");
    s_rmtree (dir);
    rc = s_download (endpoint, dir, "wan21-1.3b-diffusers", "main", error, sizeof error, NULL);
    CHECK (rc == 0, "%s", error);
    CHECK (s_size (dir, "vae/diffusion_pytorch_model.safetensors") > 0, "vae missing");
    s_rmtree (dir);
    //  MAGI-1: one variant of sand-ai/MAGI-1 with the shared T5 and VAE, nothing else.
    rc = s_download (endpoint, dir, "magi1-4.5b-distill", "main", error, sizeof error, NULL);
    CHECK (rc == 0, "%s", error);
    CHECK (s_size (dir, "ckpt/magi/4.5B_distill/inference_weight.distill/model-00002-of-00002.safetensors") > 0,
           "magi1 dit shard missing");
    CHECK (s_size (dir, "ckpt/t5/t5-v1_1-xxl/pytorch_model.bin.index.json") == 300, "magi1 t5 index");
    CHECK (s_size (dir, "ckpt/t5/t5-v1_1-xxl/spiece.model") > 0, "magi1 tokenizer missing");
    CHECK (s_size (dir, "ckpt/vae/diffusion_pytorch_model.safetensors") > 0, "magi1 vae missing");
    CHECK (s_size (dir, "ckpt/magi/4.5B_base/inference_weight/model.safetensors.index.json") == -1,
           "another magi1 variant fetched");
    CHECK (s_size (dir, "ckpt/magi/24B_base/inference_weight/model-00001-of-00008.safetensors") == -1,
           "the 24B fetched");
    CHECK (s_size (dir, "figures/logo_black.png") == -1, "unwanted magi1 file fetched");
    s_rmtree (dir);
    CHECK (vdgx_model_source_find ("magi1-24b-distill-quant") != NULL, "magi1 sources");

    //  4. A cut transfer fails clearly, keeps its .part, and the next run resumes it.
    rc = s_download (endpoint, dir, "wan21-1.3b", "cut", error, sizeof error, &fetched);
    CHECK (rc != 0 && strstr (error, "resume"), "first cut run: rc %d: %s", rc, error);
    uint64_t total = 0, first = fetched;
    int runs = 0;
    do {    //  each LFS file is cut once: keep going until all are through
        rc = s_download (endpoint, dir, "wan21-1.3b", "cut", error, sizeof error, &fetched);
        total += fetched;
        runs++;
    } while (rc != 0 && runs < 20);
    CHECK (rc == 0, "resume never finished: %s", error);
    CHECK (s_size (dir, "diffusion_pytorch_model.safetensors") == 200000 + 35 * 997,
           "resumed file has size %ld", s_size (dir, "diffusion_pytorch_model.safetensors"));
    //  Resuming fetched less than a fresh download would have.
    CHECK (first + total < 2 * 900000, "fetched %llu in all", (unsigned long long) (first + total));
    s_rmtree (dir);

    //  5. A checksum mismatch is reported and leaves no file under the final name.
    rc = s_download (endpoint, dir, "wan21-1.3b", "corrupt", error, sizeof error, NULL);
    CHECK (rc != 0 && strstr (error, "sha256 mismatch"), "corrupt: rc %d: %s", rc, error);
    int bad_final = 0;
    const char *lfs [] = { "diffusion_pytorch_model.safetensors", "Wan2.1_VAE.pth",
                           "models_t5_umt5-xxl-enc-bf16.pth" };
    for (int i = 0; i < 3; i++) {
        char part [256];
        snprintf (part, sizeof part, "%s.part", lfs [i]);
        if (s_size (dir, lfs [i]) != -1 || s_size (dir, part) != -1)
            bad_final++;
    }
    CHECK (bad_final == 0, "a corrupt file was kept");
    s_rmtree (dir);

    //  6. 404s: a missing file, an unknown revision.
    rc = s_download (endpoint, dir, "wan21-1.3b", "nofile", error, sizeof error, NULL);
    CHECK (rc != 0 && strstr (error, "404"), "nofile: %s", error);
    rc = s_download (endpoint, dir, "wan21-1.3b", "nosuchrev", error, sizeof error, NULL);
    CHECK (rc != 0 && strstr (error, "404") && strstr (error, "cannot list"), "badrev: %s", error);
    s_rmtree (dir);

    //  7. A listing that climbs out of the folder is refused before anything is written.
    rc = s_download (endpoint, dir, "wan21-1.3b", "evil", error, sizeof error, NULL);
    CHECK (rc != 0 && strstr (error, "unsafe"), "evil: %s", error);
    s_rmtree (dir);

    //  8. An unreachable hub and a bad revision string.
    kill (s_hub_pid, SIGTERM);
    waitpid (s_hub_pid, NULL, 0);
    rc = s_download (endpoint, dir, "wan21-1.3b", "main", error, sizeof error, NULL);
    CHECK (rc != 0 && strstr (error, "cannot list"), "dead hub: %s", error);
    rc = s_download (endpoint, dir, "wan21-1.3b", "../x", error, sizeof error, NULL);
    CHECK (rc != 0 && strstr (error, "bad revision"), "bad rev: %s", error);
    s_rmtree (dir);

    CHECK (vdgx_model_source_find ("wan21-1.3b") != NULL, "source table");
    CHECK (vdgx_model_source_find ("nope") == NULL, "source table");
    printf ("download tests: %s\n", s_failures? "FAILED": "passed");
    return s_failures? 1: 0;
}
