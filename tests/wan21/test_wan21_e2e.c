/*  vdgx-wan21-e2e BINDIR - the whole product on the tiny Wan 2.1 model: a tiny checkpoint
    made by `vdgx-worker --make-tiny-checkpoint`, the real vdgx-broker, a real
    `vdgx-worker --model wan21-tiny`, jobs submitted with the client library, the MP4 results
    downloaded and probed with libavformat (H.264, frame count, fps, size), and progress
    events for every denoising step. Also a request the model refuses (field named).
    Image-to-video: `--make-tiny-checkpoint DIR --model wan21-i2v-tiny`, a second worker
    serving wan21-i2v-tiny, a job with a PNG (made by libavcodec) whose MP4 has the image's
    aspect, and a job without an image refused at submit on the field `image`.
    Everything lives in a temp dir that is removed at exit; spawned processes are killed.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include "vdgx_client.h"
#include "vdgx_testproc.h"

static const char *s_dir = "";   //  vdgx_testproc_dir ()
static const char *s_bin;
static char s_broker_ep [64], s_events_ep [64];

#define CHECK(cond) VDGX_TEST_CHECK (cond)

static pid_t
s_spawn (const char *name, char *const argv [])
{
    pid_t pid = vdgx_testproc_spawn (name, argv);
    CHECK (pid > 0);
    return pid;
}

typedef struct {
    uint32_t width, height, fps, frames;
    int64_t packets;
    bool h264;
} s_probe_t;

static int
s_probe (const char *path, s_probe_t *p)
{
    memset (p, 0, sizeof *p);
    AVFormatContext *fmt = NULL;
    if (avformat_open_input (&fmt, path, NULL, NULL) < 0)
        return -1;
    int rc = -1;
    if (avformat_find_stream_info (fmt, NULL) >= 0) {
        int vi = av_find_best_stream (fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        if (vi >= 0) {
            AVStream *st = fmt->streams [vi];
            p->h264 = st->codecpar->codec_id == AV_CODEC_ID_H264;
            p->width = (uint32_t) st->codecpar->width;
            p->height = (uint32_t) st->codecpar->height;
            AVRational r = st->avg_frame_rate.num? st->avg_frame_rate: st->r_frame_rate;
            p->fps = r.den? (uint32_t) ((double) r.num / r.den + 0.5): 0;
            p->frames = (uint32_t) st->nb_frames;
            AVPacket *pkt = av_packet_alloc ();
            while (pkt && av_read_frame (fmt, pkt) >= 0) {
                if (pkt->stream_index == vi)
                    p->packets++;
                av_packet_unref (pkt);
            }
            av_packet_free (&pkt);
            rc = 0;
        }
    }
    avformat_close_input (&fmt);
    return rc;
}

typedef struct {
    bool steps_seen [64];
    uint32_t steps;
    bool text, decoding, loading;
} s_events_t;

//  Reads job events from sub until the job's final state; records the phases and steps.
static vdgx_job_state_t
s_follow (zsock_t *sub, const char *id, s_events_t *ev, int timeout_ms)
{
    memset (ev, 0, sizeof *ev);
    int64_t end = zclock_mono () + timeout_ms;
    zpoller_t *poller = zpoller_new (sub, NULL);
    vdgx_job_state_t state = VDGX_JOB_QUEUED;
    while (zclock_mono () < end) {
        if (!zpoller_wait (poller, 200))
            continue;
        zmsg_t *msg = zmsg_recv (sub);
        vdgx_event_t e;
        vdgx_event_init (&e);
        vdgx_error_t err;
        vdgx_error_init (&err);
        if (msg && vdgx_event_decode_msg (&e, msg, &err) == 0 && !e.is_model && streq (e.id, id)) {
            state = e.job_state;
            if (e.has_phase) {
                if (e.phase == VDGX_PHASE_LOADING)
                    ev->loading = true;
                if (e.phase == VDGX_PHASE_ENCODING_TEXT)
                    ev->text = true;
                if (e.phase == VDGX_PHASE_DECODING)
                    ev->decoding = true;
                if (e.phase == VDGX_PHASE_DENOISING && e.step < 64) {
                    ev->steps_seen [e.step] = true;
                    ev->steps = e.steps;
                }
            }
        }
        vdgx_event_clear (&e);
        zmsg_destroy (&msg);
        if (vdgx_job_state_is_final (state))
            break;
    }
    zpoller_destroy (&poller);
    return state;
}

//  A w x h PNG of a gradient (libavcodec's PNG encoder, RGB24); malloc'd bytes.
static uint8_t *
s_png (int w, int h, size_t *size_p)
{
    const AVCodec *codec = avcodec_find_encoder (AV_CODEC_ID_PNG);
    AVCodecContext *c = codec? avcodec_alloc_context3 (codec): NULL;
    AVFrame *f = av_frame_alloc ();
    AVPacket *pkt = av_packet_alloc ();
    CHECK (c && f && pkt);
    c->width = f->width = w;
    c->height = f->height = h;
    c->pix_fmt = AV_PIX_FMT_RGB24;
    f->format = AV_PIX_FMT_RGB24;
    c->time_base = (AVRational) { 1, 25 };
    CHECK (avcodec_open2 (c, codec, NULL) == 0 && av_frame_get_buffer (f, 0) == 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 3; x++)
            f->data [0][y * f->linesize [0] + x] = (uint8_t) (x * 255 / (3 * w) ^ y * 255 / h);
    CHECK (avcodec_send_frame (c, f) == 0 && avcodec_send_frame (c, NULL) == 0);
    CHECK (avcodec_receive_packet (c, pkt) == 0);
    uint8_t *bytes = malloc ((size_t) pkt->size);
    CHECK (bytes);
    memcpy (bytes, pkt->data, (size_t) pkt->size);
    *size_p = (size_t) pkt->size;
    av_packet_free (&pkt);
    av_frame_free (&f);
    avcodec_free_context (&c);
    return bytes;
}

static char *
s_submit (vdgx_client_t *client, vdgx_genreq_t *req)
{
    char *id = NULL;
    int rc = vdgx_client_submit (client, req, &id, NULL);
    if (rc)
        fprintf (stderr, "submit: %s: %s\n", vdgx_client_error_code (client), vdgx_client_error (client));
    CHECK (rc == 0 && id);
    return id;
}

//  One job through the whole system; checks the MP4 and the progress events.
static void
s_job (vdgx_client_t *client, zsock_t *sub, uint32_t width, uint32_t height, uint32_t frames,
       double seconds, uint32_t fps, uint32_t steps, uint32_t want_frames, uint32_t want_fps)
{
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "wan21-tiny");
    req.prompt = strdup ("a small red boat on a calm lake at sunset");
    req.width = width, req.height = height, req.frames = frames, req.fps = fps, req.steps = steps;
    if (seconds > 0)
        req.has_seconds = true, req.seconds = seconds;
    req.has_seed = true, req.seed = 1234;
    req.no_cache = true;
    int64_t t0 = zclock_mono ();
    char *id = s_submit (client, &req);
    s_events_t ev;
    vdgx_job_state_t state = s_follow (sub, id, &ev, 120000);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    CHECK (vdgx_client_wait (client, id, 30000, NULL, NULL, &job) == 0);
    if (job.state != VDGX_JOB_COMPLETED)
        fprintf (stderr, "job %s: %s %s %s\n", id, vdgx_job_state_name (job.state),
                 job.has_error? job.error.code: "", job.has_error? job.error.message: "");
    CHECK (job.state == VDGX_JOB_COMPLETED && state == VDGX_JOB_COMPLETED);
    //  Every denoising step was reported, then the decode.
    CHECK (ev.text && ev.decoding && ev.steps == steps);
    for (uint32_t s = 1; s <= steps; s++)
        CHECK (ev.steps_seen [s]);
    char path [320];
    snprintf (path, sizeof path, "%s/%s.mp4", s_dir, id);
    CHECK (vdgx_client_result (client, id, path) == 0);
    s_probe_t p;
    CHECK (s_probe (path, &p) == 0);
    printf ("job %s: %ux%u %u fps, %lld frames (h264 %d) in %.2f s\n", id, p.width, p.height,
            p.fps, (long long) p.packets, p.h264, (zclock_mono () - t0) / 1000.0);
    CHECK (p.h264 && p.width == (width? width: 64) && p.height == (height? height: 48));
    CHECK (p.packets == (int64_t) want_frames && p.fps == want_fps);
    CHECK (job.has_result && job.result.frames == want_frames && job.result.fps == want_fps);
    CHECK (unlink (path) == 0);
    vdgx_jobstatus_clear (&job);
    vdgx_genreq_clear (&req);
    free (id);
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: vdgx-wan21-e2e BINDIR\n");
        return 2;
    }
    s_bin = argv [1];
    zsys_init ();
    if (vdgx_testproc_init ("vdgx-wan21-e2e"))
        return 1;
    s_dir = vdgx_testproc_dir ();

    //  The tiny checkpoint, through the worker's own flag.
    char worker [600], broker [600], weights [300];
    snprintf (worker, sizeof worker, "%s/vdgx-worker", s_bin);
    snprintf (broker, sizeof broker, "%s/vdgx-broker", s_bin);
    snprintf (weights, sizeof weights, "%s/tiny", s_dir);
    char *mk [] = { worker, "--make-tiny-checkpoint", weights, NULL };
    pid_t maker = s_spawn ("make-tiny", mk);
    CHECK (vdgx_testproc_wait_exit (maker, 120000) == 0);
    char readme [400];
    snprintf (readme, sizeof readme, "%s/README.txt", weights);
    CHECK (access (readme, R_OK) == 0);

    int ports [2];
    CHECK (vdgx_testproc_free_ports (ports, 2) == 0);
    snprintf (s_broker_ep, sizeof s_broker_ep, "tcp://127.0.0.1:%d", ports [0]);
    snprintf (s_events_ep, sizeof s_events_ep, "tcp://127.0.0.1:%d", ports [1]);
    char bdata [300], wdata [300];
    snprintf (bdata, sizeof bdata, "%s/broker", s_dir);
    snprintf (wdata, sizeof wdata, "%s/worker", s_dir);
    char *bargv [] = { broker, "--bind", s_broker_ep, "--events", s_events_ep, "--data", bdata,
                       "--heartbeat-ms", "250", "--model", "wan21-tiny", "--model", "wan21-i2v-tiny", NULL };
    s_spawn ("broker", bargv);
    char *wargv [] = { worker, "--model", "wan21-tiny", "--weights", weights, "--broker", s_broker_ep,
                       "--data", wdata, "--threads", "2", "--heartbeat-ms", "250", NULL };
    s_spawn ("worker", wargv);

    vdgx_client_t *client = vdgx_client_new (s_broker_ep, s_events_ep);
    CHECK (client);
    vdgx_client_set_timeout (client, 2000);
    int64_t end = zclock_mono () + 15000;
    bool up = false;
    while (!up && zclock_mono () < end)
        if (!(up = vdgx_client_health (client, NULL, NULL) == 0))
            zclock_sleep (100);
    CHECK (up);
    //  Events of every job, subscribed before any job exists (no slow-joiner loss).
    zsock_t *sub = zsock_new_sub (s_events_ep, "job.");
    CHECK (sub);
    zclock_sleep (300);

    //  Defaults: 64x48, 9 frames, 16 fps.
    s_job (client, sub, 0, 0, 0, 0, 0, 4, 9, 16);
    //  seconds and fps: 1 s at 8 fps -> 4*round(8/4)+1 = 9 frames.
    s_job (client, sub, 96, 64, 0, 1.0, 8, 3, 9, 8);
    //  4n+1 frames at another size.
    s_job (client, sub, 48, 80, 13, 0, 12, 2, 13, 12);

    //  A request the model refuses is refused at submit (the worker advertised the model's
    //  limits when it registered), naming the field; nothing is queued.
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "wan21-tiny");
    req.prompt = strdup ("x");
    req.width = 40, req.height = 48;
    char *id = NULL;
    CHECK (vdgx_client_submit (client, &req, &id, NULL) != 0 && !id);
    printf ("refused: %s: %s\n", vdgx_client_error_code (client), vdgx_client_error (client));
    CHECK (streq (vdgx_client_error_code (client), "bad_request"));
    CHECK (strstr (vdgx_client_error (client), "width must be a multiple of 16 from 32 to 256"));
    req.width = 64, req.frames = 35;        //  over the tiny model's 33
    CHECK (vdgx_client_submit (client, &req, &id, NULL) != 0 && !id);
    CHECK (strstr (vdgx_client_error (client), "frames must be 4n+1 from 1 to 33"));
    vdgx_genreq_clear (&req);
    s_job (client, sub, 32, 32, 5, 0, 0, 2, 5, 16);

    //  The `vdgx generate` command line, when it is built: exit 0, an MP4 at -o, progress lines.
    //  Progress comes from PUB/SUB events (and a status poll each second): 256x256x9 and 40
    //  steps (about 10x the work of the jobs above) keep the job denoising for seconds, so a
    //  loaded machine's late subscription or the first poll still sees it (80x48 was over
    //  before either, now and then, on a machine at load 20).
    char cli [600], out [400];
    snprintf (cli, sizeof cli, "%s/vdgx", s_bin);
    snprintf (out, sizeof out, "%s/cli.mp4", s_dir);
    if (access (cli, X_OK) == 0) {
        char *cargv [] = { cli, "--broker", s_broker_ep, "--events", s_events_ep, "generate",
                           "a lighthouse in a storm", "--model", "wan21-tiny", "-o", out,
                           "--size", "256x256", "--frames", "9", "--fps", "10", "--steps", "40",
                           "--no-cache", NULL };
        pid_t pid = s_spawn ("cli", cargv);
        CHECK (vdgx_testproc_wait_exit (pid, 120000) == 0);
        s_probe_t p;
        CHECK (s_probe (out, &p) == 0);
        printf ("vdgx generate: %ux%u %u fps, %lld frames\n", p.width, p.height, p.fps,
                (long long) p.packets);
        CHECK (p.h264 && p.width == 256 && p.height == 256 && p.fps == 10 && p.packets == 9);
        CHECK (vdgx_testproc_count_lines ("/cli.", "denois") > 0);
    }
    else
        printf ("vdgx (CLI) not built: its part is skipped\n");

    //  Image-to-video: the tiny I2V checkpoint, its worker, a job from a 150x100 PNG. The
    //  default 64x48 budget and the 3:2 image give a 64x32 video (sides rounded down to 16).
    char iweights [300], iwdata [300];
    snprintf (iweights, sizeof iweights, "%s/tiny-i2v", s_dir);
    snprintf (iwdata, sizeof iwdata, "%s/worker-i2v", s_dir);
    char *imk [] = { worker, "--make-tiny-checkpoint", iweights, "--model", "wan21-i2v-tiny", NULL };
    maker = s_spawn ("make-tiny-i2v", imk);
    CHECK (vdgx_testproc_wait_exit (maker, 120000) == 0);
    char *iwargv [] = { worker, "--model", "wan21-i2v-tiny", "--weights", iweights, "--broker", s_broker_ep,
                        "--data", iwdata, "--threads", "2", "--heartbeat-ms", "250", NULL };
    s_spawn ("worker-i2v", iwargv);
    size_t png_size = 0;
    uint8_t *png = s_png (150, 100, &png_size);
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "wan21-i2v-tiny");
    req.prompt = strdup ("the boat starts to move");
    req.steps = 3;
    req.has_seed = true, req.seed = 7;
    req.no_cache = true;
    CHECK (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    int64_t t0 = zclock_mono ();
    id = s_submit (client, &req);
    s_events_t ev;
    CHECK (s_follow (sub, id, &ev, 120000) == VDGX_JOB_COMPLETED);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    CHECK (vdgx_client_wait (client, id, 30000, NULL, NULL, &job) == 0 && job.state == VDGX_JOB_COMPLETED);
    CHECK (ev.text && ev.decoding && ev.steps == 3);
    snprintf (out, sizeof out, "%s/i2v.mp4", s_dir);
    CHECK (vdgx_client_result (client, id, out) == 0);
    s_probe_t p;
    CHECK (s_probe (out, &p) == 0);
    printf ("i2v job %s: %ux%u %u fps, %lld frames (h264 %d) in %.2f s\n", id, p.width, p.height,
            p.fps, (long long) p.packets, p.h264, (zclock_mono () - t0) / 1000.0);
    CHECK (p.h264 && p.width == 64 && p.height == 32 && p.packets == 9 && p.fps == 16);
    CHECK (job.has_result && job.result.frames == 9 && job.result.width == 64 && job.result.height == 32);
    vdgx_jobstatus_clear (&job);
    free (id);
    id = NULL;
    //  Without the image the submit is refused, naming the field `image` (the model's limits
    //  require it), and nothing is queued.
    vdgx_genreq_set_image (&req, "image", NULL, 0);
    CHECK (vdgx_client_submit (client, &req, &id, NULL) != 0 && !id);
    printf ("i2v without an image: refused: %s: %s\n", vdgx_client_error_code (client),
            vdgx_client_error (client));
    CHECK (streq (vdgx_client_error_code (client), "bad_request"));
    CHECK (strstr (vdgx_client_error (client), "needs a first-frame image"));
    vdgx_genreq_clear (&req);
    free (png);

    zsock_destroy (&sub);
    vdgx_client_destroy (&client);
    //  No sanitizer report in the children's logs.
    CHECK (vdgx_testproc_sanitizer_clean ());
    printf ("wan21 e2e: OK\n");
    return 0;
}
