/*  make_seeds.c - writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/)
    from readable JSON. Run by hand after a protocol change:
        make_seeds <source>/tests/fuzz/corpus
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec_util.h"

typedef struct {
    const char *target;
    int prefix;                 //  -1 = none, else one byte written before the body
    const char *json;
} s_seed_t;

#define REQ "\"model\":\"wan21-tiny\",\"prompt\":\"a cat\""
#define VIDEO "\"size\":10,\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"mime\":\"video/mp4\",\"width\":832,\"height\":480,\"frames\":81,\"fps\":16,\"seconds\":5.0"
#define STATUS "\"id\":\"j1\",\"model\":\"wan21-tiny\",\"state\":\"completed\",\"phase\":\"done\",\"step\":50,\"steps\":50,\"percent\":100.0,\"queue_position\":0,\"attempt\":1,\"created_at\":1.5,\"started_at\":2.5,\"finished_at\":9.0,\"cached\":false"

static const s_seed_t s_seeds [] = {
    { "genreq", -1, "{" REQ "}" },
    { "genreq", -1, "{" REQ ",\"negative_prompt\":\"blurry\",\"width\":832,\"height\":480,\"seconds\":5.0,\"fps\":16,\"steps\":50,\"guidance\":5.0,\"shift\":3.0,\"sampler\":\"unipc\",\"seed\":42,\"precision\":\"bf16\",\"priority\":\"high\",\"idempotency_key\":\"k1\",\"no_cache\":true}" },
    { "genreq", -1, "{" REQ ",\"frames\":33}" },
    { "job", -1, "{\"id\":\"j1\",\"attempt\":1,\"request\":{" REQ "}}" },
    { "result", -1, "{\"type\":\"result\",\"ok\":true," VIDEO ",\"seed\":42,\"timings\":{\"load\":1.0,\"text\":0.5,\"denoise\":20.0,\"decode\":2.0,\"mux\":0.1}}" },
    { "result", -1, "{\"type\":\"result\",\"ok\":false,\"error\":{\"code\":\"cancelled\",\"message\":\"cancelled\"}}" },
    { "progress", -1, "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":3,\"steps\":50,\"percent\":6.0,\"message\":\"ok\"}" },
    { "chunk", -1, "{\"type\":\"chunk\",\"offset\":0,\"data\":\"$BIN16\"}" },
    { "wreply", -1, "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"loading\",\"step\":0,\"steps\":0,\"percent\":0}" },
    { "wreply", -1, "{\"type\":\"chunk\",\"offset\":4,\"data\":\"$BIN4\"}" },
    { "wreply", -1, "{\"type\":\"result\",\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"x\",\"field\":\"y\"}}" },
    { "wstate", -1, "{\"service\":\"wan21-tiny\",\"host\":\"h\",\"pid\":1,\"state\":\"warm\",\"rss_bytes\":1,\"peak_bytes\":2,\"model_bytes\":3,\"host_budget_bytes\":0,\"device\":\"cpu\",\"precisions\":[\"bf16\"],\"job\":\"\",\"ext\":[\"control\"],\"pending\":[\"j0\"]}" },
    { "wstate", -1, "{\"service\":\"wan\",\"state\":\"cold\",\"identity\":\"00ab\",\"idle_ms\":5}" },
    { "wstate", -1, "{\"service\":\"wan\",\"state\":\"cold\",\"limits\":{\"wh_min\":480,\"wh_max\":832,\"wh_multiple\":16,\"sizes\":[\"832x480\",\"480x832\"],\"frames_max\":81,\"frames_4n1\":true,\"steps_max\":1000,\"guidance_max\":50.0,\"fps_max\":60}}" },
    { "control", -1, "{\"op\":\"cancel\",\"id\":\"j1\"}" },
    { "control", -1, "{\"op\":\"drain\"}" },
    { "jobstatus", -1, "{" STATUS ",\"result\":{" VIDEO "},\"request\":{" REQ "}}" },
    { "jobcmd", -1, "{\"cmd\":\"submit\",\"request\":{" REQ "}}" },
    { "jobcmd", -1, "{\"cmd\":\"list\",\"state\":\"queued\",\"model\":\"wan\",\"limit\":5,\"after\":\"j1\"}" },
    { "jobcmd", -1, "{\"cmd\":\"result\",\"id\":\"j1\",\"offset\":10,\"length\":100}" },
    { "jobcmd", -1, "{\"cmd\":\"models\"}" },
    { "jobcmd", -1, "{\"cmd\":\"drain\",\"model\":\"wan\",\"host\":\"gpu2\"}" },
    { "error", -1, "{\"ok\":false,\"error\":{\"code\":\"queue_full\",\"message\":\"full\",\"field\":\"model\",\"retry_after_ms\":1000}}" },
    { "jobreply", 0, "{\"ok\":true,\"id\":\"j1\",\"state\":\"queued\",\"cached\":false,\"queue_position\":3}" },
    { "jobreply", 1, "{\"ok\":true,\"job\":{" STATUS "}}" },
    { "jobreply", 2, "{\"ok\":true,\"jobs\":[{" STATUS "}],\"has_more\":true}" },
    { "jobreply", 4, "{\"ok\":true,\"size\":10,\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"offset\":2,\"data\":\"$BIN8\"}" },
    { "jobreply", 5, "{\"ok\":true,\"id\":\"j1\",\"deleted\":true}" },
    { "jobreply", 6, "{\"ok\":false,\"error\":{\"code\":\"unknown_model\",\"message\":\"no\"}}" },
    { "jobreply", 7, "{\"ok\":true,\"models\":[{\"name\":\"wan\",\"workers\":2,\"queued\":1,\"running\":1,\"states\":{\"warm\":1,\"busy\":1}}]}" },
    { "jobreply", 7, "{\"ok\":true,\"models\":[{\"name\":\"t\",\"workers\":1,\"states\":{\"cold\":1},\"limits\":{\"wh_min\":32,\"wh_max\":256,\"wh_multiple\":16,\"frames_max\":33,\"frames_4n1\":true,\"steps_max\":100,\"guidance_max\":50.0,\"fps_max\":60}}]}" },
    { "jobreply", 8, "{\"ok\":true,\"workers\":2}" },
};

static int
s_write (const char *dir, const char *target, int index, const void *a, size_t na,
         const void *b, size_t nb)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, target);
    mkdir (path, 0755);
    snprintf (path, sizeof path, "%s/%s/seed-%02d", dir, target, index);
    FILE *file = fopen (path, "wb");
    if (!file)
        return -1;
    fwrite (a, 1, na, file);
    fwrite (b, 1, nb, file);
    return fclose (file);
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: make_seeds <corpus dir>\n");
        return 1;
    }
    const char *dir = argv [1];
    mkdir (dir, 0755);
    int counter = 0;
    for (size_t i = 0; i < sizeof s_seeds / sizeof s_seeds [0]; i++) {
        msgpack_sbuffer sb;
        if (codec_json_to_msgpack (s_seeds [i].json, &sb)) {
            fprintf (stderr, "bad JSON: %s\n", s_seeds [i].json);
            return 1;
        }
        uint8_t prefix = (uint8_t) s_seeds [i].prefix;
        if (s_write (dir, s_seeds [i].target, counter++, &prefix, s_seeds [i].prefix >= 0, sb.data, sb.size))
            return 1;
        msgpack_sbuffer_destroy (&sb);
    }
    //  Events: topic, NUL, map.
    msgpack_sbuffer sb;
    codec_json_to_msgpack ("{\"type\":\"progress\",\"id\":\"j1\",\"model\":\"wan\",\"state\":\"running\",\"phase\":\"denoising\",\"step\":1,\"steps\":2,\"percent\":50.0,\"ts\":1.0}", &sb);
    s_write (dir, "event", counter++, "job.j1", 7, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    codec_json_to_msgpack ("{\"type\":\"state\",\"model\":\"wan\",\"state\":\"warm\",\"workers\":1,\"ts\":1.0}", &sb);
    s_write (dir, "event", counter++, "model.wan", 10, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    //  MDP: frames as 2-byte little-endian length + bytes.
    static const char *mdp [][6] = {
        { "MDPC02", "\x01", "vdgx.jobs", "{}", NULL },
        { "MDPW02", "\x01", "wan21-tiny", NULL },
        { "MDPW02", "\x04", "job-1", "", "body", NULL },
        { "MDPW02", "\x05", NULL },
        { "", "MDPW01", "\x03", "c", "", NULL },
        { "", "MDPC01", "mmi.service", "wan", NULL },
    };
    for (size_t i = 0; i < sizeof mdp / sizeof mdp [0]; i++) {
        uint8_t buf [256];
        size_t len = 0;
        for (int f = 0; mdp [i][f]; f++) {
            size_t n = strlen (mdp [i][f]);
            buf [len++] = (uint8_t) n;
            buf [len++] = 0;
            memcpy (buf + len, mdp [i][f], n);
            len += n;
        }
        s_write (dir, "mdp", counter++, buf, len, NULL, 0);
    }
    const char *ini =
        "[broker]\nendpoint = tcp://127.0.0.1:5555\nheartbeat_ms = 2500\n"
        "[general]\ndata_dir = \"./var # x\"\n"
        "[models]\nwan21-tiny = ./w\n[worker.wan21-tiny]\nworkers = 1\nprecisions = bf16, fp8\n";
    s_write (dir, "config", counter++, ini, strlen (ini), NULL, 0);
    printf ("wrote %d seeds under %s\n", counter, dir);
    return 0;
}
