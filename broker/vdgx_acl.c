/*  vdgx_acl.c - peer identity, roles and attempt tokens for the broker (see vdgx_acl.h). */
#include "vdgx_acl.h"
#include "vdgx_log.h"
#include "vdgx_netlist.h"
#include "vdgx_sha256.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_SECRET_SIZE   32

struct _vdgx_acl_t {
    vdgx_netlist_t *nets;       //  trusted networks
    zsock_t *zap;               //  CURVE: the ZAP handler socket
    zcertstore_t *certs;        //  CURVE: allowed/ (reloaded by CZMQ when the folder changes)
    uint8_t secret [S_SECRET_SIZE];
    bool has_secret;
};

vdgx_acl_t *
vdgx_acl_new (void)
{
    vdgx_acl_t *self = (vdgx_acl_t *) zmalloc (sizeof (vdgx_acl_t));
    self->nets = vdgx_netlist_new ();
    //  Until a secret is loaded, tokens still differ per process.
    if (getrandom (self->secret, sizeof self->secret, 0) != (ssize_t) sizeof self->secret)
        vdgx_sha256_digest (&self, sizeof self, self->secret);
    return self;
}

void
vdgx_acl_destroy (vdgx_acl_t **self_p)
{
    assert (self_p);
    vdgx_acl_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->zap);
        zcertstore_destroy (&self->certs);
        vdgx_netlist_destroy (&self->nets);
        memset (self->secret, 0, sizeof self->secret);
        free (self);
        *self_p = NULL;
    }
}

//  ---------------------------------------------------------------------------------------
//  Networks

int
vdgx_acl_trust_nets (vdgx_acl_t *self, const char *list, char *error, size_t errsize)
{
    assert (self);
    return vdgx_netlist_add (self->nets, list, error, errsize);
}

bool
vdgx_acl_trusted_address (vdgx_acl_t *self, const char *address)
{
    int family;
    uint8_t addr [16];
    //  No address, or not an IP (":uid:gid:pid" of an IPC peer): a local process.
    if (!address || !*address || vdgx_netlist_parse_ip (address, &family, addr))
        return true;
    if (family == AF_INET && addr [0] == 127)
        return true;
    static const uint8_t loop6 [16] = { 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1 };
    if (family == AF_INET6 && memcmp (addr, loop6, 16) == 0)
        return true;
    return vdgx_netlist_has (self->nets, family, addr);
}

//  ---------------------------------------------------------------------------------------
//  ZAP handler (RFC 27)

zsock_t *
vdgx_acl_zap_bind (vdgx_acl_t *self, const char *allowed_dir)
{
    assert (self && !self->zap);
    self->zap = zsock_new (ZMQ_REP);
    if (!self->zap || zsock_bind (self->zap, "inproc://zeromq.zap.01") != 0) {
        zsock_destroy (&self->zap);
        return NULL;
    }
    self->certs = zcertstore_new (allowed_dir);
    if (!self->certs) {
        zsock_destroy (&self->zap);
        return NULL;
    }
    return self->zap;
}

zsock_t *
vdgx_acl_zap (vdgx_acl_t *self)
{
    return self->zap;
}

bool
vdgx_acl_curve (vdgx_acl_t *self)
{
    return self->zap != NULL;
}

//  Appends one ZMTP metadata property (name length, name, 4-byte value length, value).
static void
s_meta_add (zchunk_t *meta, const char *name, const char *value)
{
    uint8_t n = (uint8_t) strlen (name);
    uint32_t v = (uint32_t) strlen (value);
    uint8_t len [4] = { (uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v };
    zchunk_extend (meta, &n, 1);
    zchunk_extend (meta, name, n);
    zchunk_extend (meta, len, 4);
    zchunk_extend (meta, value, v);
}

int
vdgx_acl_zap_handle (vdgx_acl_t *self)
{
    zmsg_t *request = zmsg_recv (self->zap);
    if (!request)
        return -1;
    char *version = zmsg_popstr (request);
    char *sequence = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    const char *status = "400", *text = "No access";
    char user [41] = "";
    zchunk_t *meta = zchunk_new (NULL, 256);
    if (version && streq (version, "1.0") && mechanism && streq (mechanism, "CURVE")
    &&  key && zframe_size (key) == 32) {
        zmq_z85_encode (user, zframe_data (key), 32);
        zcert_t *cert = zcertstore_lookup (self->certs, user);
        if (cert) {
            const char *role = zcert_meta (cert, "role");
            const char *models = zcert_meta (cert, "models");
            const char *name = zcert_meta (cert, "name");
            s_meta_add (meta, "role", role? role: "user");
            s_meta_add (meta, "models", models? models: "");
            s_meta_add (meta, "name", name && *name? name: user);
            status = "200";
            text = "OK";
        }
        else
            vdgx_log_warn ("curve.refused", "key=%s address=%s", user, address? address: "");
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, sequence? sequence: "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, streq (status, "200")? user: "");
    zmsg_addmem (reply, zchunk_data (meta), streq (status, "200")? zchunk_size (meta): 0);
    zmsg_send (&reply, self->zap);
    zchunk_destroy (&meta);
    zframe_destroy (&key);
    zstr_free (&version);
    zstr_free (&sequence);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zmsg_destroy (&request);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Peers

static const char *
s_meta (zframe_t *frame, const char *name)
{
    return frame? zframe_meta (frame, name): NULL;
}

void
vdgx_acl_peer (vdgx_acl_t *self, zframe_t *frame, vdgx_peer_t *peer)
{
    memset (peer, 0, sizeof *peer);
    const char *address = s_meta (frame, "Peer-Address");
    snprintf (peer->address, sizeof peer->address, "%s", address? address: "");
    if (self->zap) {
        const char *role = s_meta (frame, "role");
        const char *models = s_meta (frame, "models");
        const char *name = s_meta (frame, "name");
        const char *key = s_meta (frame, "User-Id");
        snprintf (peer->key, sizeof peer->key, "%s", key? key: "");
        peer->role = role && streq (role, "admin")? VDGX_ROLE_ADMIN
                   : role && streq (role, "worker")? VDGX_ROLE_WORKER: VDGX_ROLE_USER;
        if (peer->role == VDGX_ROLE_WORKER && models) {
            if (streq (models, "*"))
                peer->any_model = true;
            else {
                //  ",a,b," with spaces dropped, so a look-up is one strstr of ",model,".
                size_t n = 0;
                peer->models [n++] = ',';
                for (const char *p = models; *p && n + 2 < sizeof peer->models; p++)
                    if (*p != ' ' && *p != '\t')
                        peer->models [n++] = *p;
                peer->models [n++] = ',';
                peer->models [n] = 0;
            }
        }
        snprintf (peer->owner, sizeof peer->owner, "curve:%.57s", name && *name? name: "?");
        return;
    }
    if (vdgx_acl_trusted_address (self, peer->address)) {
        peer->role = VDGX_ROLE_ADMIN;
        peer->any_model = true;
        return;
    }
    peer->role = VDGX_ROLE_USER;
    snprintf (peer->owner, sizeof peer->owner, "addr:%.58s", peer->address);
}

bool
vdgx_peer_may_serve (const vdgx_peer_t *peer, const char *model)
{
    if (peer->any_model)
        return true;
    if (peer->role != VDGX_ROLE_WORKER || !peer->models [0] || !model || !*model)
        return false;
    char needle [VDGX_SERVICE_MAX + 3];
    snprintf (needle, sizeof needle, ",%s,", model);
    return strstr (peer->models, needle) != NULL;
}

//  ---------------------------------------------------------------------------------------
//  Attempt tokens

int
vdgx_acl_load_secret (vdgx_acl_t *self, const char *path, char *error, size_t errsize)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read (fd, self->secret, sizeof self->secret);
        close (fd);
        if (n != (ssize_t) sizeof self->secret) {
            snprintf (error, errsize, "%s: expected %d bytes", path, S_SECRET_SIZE);
            return -1;
        }
        self->has_secret = true;
        return 0;
    }
    if (errno != ENOENT) {
        snprintf (error, errsize, "%s: %s", path, strerror (errno));
        return -1;
    }
    uint8_t secret [S_SECRET_SIZE];
    if (getrandom (secret, sizeof secret, 0) != (ssize_t) sizeof secret) {
        snprintf (error, errsize, "no random bytes for %s", path);
        return -1;
    }
    fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write (fd, secret, sizeof secret) != (ssize_t) sizeof secret || fsync (fd)) {
        snprintf (error, errsize, "cannot write %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    close (fd);
    memcpy (self->secret, secret, sizeof secret);
    self->has_secret = true;
    return 0;
}

void
vdgx_acl_token (vdgx_acl_t *self, const char *id, uint32_t attempt, char token [VDGX_TOKEN_MAX + 1])
{
    //  HMAC-SHA256 (RFC 2104) of "id/attempt", truncated to 128 bits.
    uint8_t pad [64], inner [VDGX_SHA256_SIZE], digest [VDGX_SHA256_SIZE];
    char message [VDGX_ID_MAX + 16];
    int n = snprintf (message, sizeof message, "%s/%u", id, attempt);
    vdgx_sha256_t *h = vdgx_sha256_new ();
    memset (pad, 0x36, sizeof pad);
    for (size_t i = 0; i < sizeof self->secret; i++)
        pad [i] ^= self->secret [i];
    vdgx_sha256_update (h, pad, sizeof pad);
    vdgx_sha256_update (h, message, (size_t) n);
    vdgx_sha256_final (h, inner);
    vdgx_sha256_init (h);
    memset (pad, 0x5c, sizeof pad);
    for (size_t i = 0; i < sizeof self->secret; i++)
        pad [i] ^= self->secret [i];
    vdgx_sha256_update (h, pad, sizeof pad);
    vdgx_sha256_update (h, inner, sizeof inner);
    vdgx_sha256_final (h, digest);
    vdgx_sha256_destroy (&h);
    static const char hex [] = "0123456789abcdef";
    for (int i = 0; i < VDGX_TOKEN_MAX / 2; i++) {
        token [2 * i] = hex [digest [i] >> 4];
        token [2 * i + 1] = hex [digest [i] & 15];
    }
    token [VDGX_TOKEN_MAX] = 0;
}

bool
vdgx_acl_token_ok (vdgx_acl_t *self, const char *id, uint32_t attempt, const char *token)
{
    if (!token || strlen (token) != VDGX_TOKEN_MAX)
        return false;
    char want [VDGX_TOKEN_MAX + 1];
    vdgx_acl_token (self, id, attempt, want);
    uint8_t diff = 0;
    for (int i = 0; i < VDGX_TOKEN_MAX; i++)
        diff |= (uint8_t) (want [i] ^ token [i]);
    return diff == 0;
}

//  ---------------------------------------------------------------------------------------
//  Selftest

void
vdgx_acl_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_acl: ");
    vdgx_acl_t *acl = vdgx_acl_new ();
    char error [256];
    assert (vdgx_acl_trust_nets (acl, "10.1.0.0/16, 192.168.7.7 fd00::/8", error, sizeof error) == 0);
    assert (vdgx_acl_trust_nets (acl, "10.0.0.0/33", error, sizeof error) == -1);
    assert (vdgx_acl_trust_nets (acl, "banana", error, sizeof error) == -1);
    assert (vdgx_acl_trusted_address (acl, ""));
    assert (vdgx_acl_trusted_address (acl, ":1000:1000:42"));       //  IPC peer credentials
    assert (vdgx_acl_trusted_address (acl, "127.0.0.1"));
    assert (vdgx_acl_trusted_address (acl, "::1"));
    assert (vdgx_acl_trusted_address (acl, "10.1.200.3"));
    assert (vdgx_acl_trusted_address (acl, "::ffff:10.1.0.9"));
    assert (vdgx_acl_trusted_address (acl, "192.168.7.7"));
    assert (!vdgx_acl_trusted_address (acl, "192.168.7.8"));
    assert (!vdgx_acl_trusted_address (acl, "10.2.0.1"));
    assert (vdgx_acl_trusted_address (acl, "fd12::5"));
    assert (!vdgx_acl_trusted_address (acl, "fe80::1"));

    //  Plain peers: trusted ones are the operator, others users named by address.
    vdgx_peer_t peer;
    vdgx_acl_peer (acl, NULL, &peer);
    assert (peer.role == VDGX_ROLE_ADMIN && peer.any_model && !*peer.owner);
    assert (vdgx_peer_may_serve (&peer, "anything"));
    memset (&peer, 0, sizeof peer);
    peer.role = VDGX_ROLE_WORKER;
    snprintf (peer.models, sizeof peer.models, ",wan21-tiny,testgen,");
    assert (vdgx_peer_may_serve (&peer, "testgen"));
    assert (vdgx_peer_may_serve (&peer, "wan21-tiny"));
    assert (!vdgx_peer_may_serve (&peer, "wan21"));
    assert (!vdgx_peer_may_serve (&peer, "test"));
    peer.role = VDGX_ROLE_USER;
    assert (!vdgx_peer_may_serve (&peer, "testgen"));

    //  Tokens: stable per (secret, id, attempt), different otherwise; the secret persists.
    char dir [] = "/tmp/vdgx-acl-XXXXXX";
    assert (mkdtemp (dir));
    char path [64];
    snprintf (path, sizeof path, "%s/token.key", dir);
    assert (vdgx_acl_load_secret (acl, path, error, sizeof error) == 0);
    char t1 [VDGX_TOKEN_MAX + 1], t2 [VDGX_TOKEN_MAX + 1], t3 [VDGX_TOKEN_MAX + 1];
    vdgx_acl_token (acl, "job1", 1, t1);
    vdgx_acl_token (acl, "job1", 2, t2);
    assert (strlen (t1) == 32 && strcmp (t1, t2) != 0);
    assert (vdgx_acl_token_ok (acl, "job1", 1, t1));
    assert (!vdgx_acl_token_ok (acl, "job1", 2, t1));
    assert (!vdgx_acl_token_ok (acl, "job2", 1, t1));
    assert (!vdgx_acl_token_ok (acl, "job1", 1, ""));
    assert (!vdgx_acl_token_ok (acl, "job1", 1, NULL));
    vdgx_acl_t *again = vdgx_acl_new ();
    assert (vdgx_acl_load_secret (again, path, error, sizeof error) == 0);
    vdgx_acl_token (again, "job1", 1, t3);
    assert (streq (t1, t3));
    vdgx_acl_destroy (&again);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    unlink (path);
    rmdir (dir);

    //  ZAP: a certificate in allowed/ with its metadata reaches every message.
    if (zsys_has_curve ()) {
        char cdir [] = "/tmp/vdgx-acl-XXXXXX";
        assert (mkdtemp (cdir));
        zcert_t *server = zcert_new ();
        zcert_t *worker = zcert_new ();
        zcert_set_meta (worker, "role", "worker");
        zcert_set_meta (worker, "models", "testgen, wan21-tiny");
        zcert_set_meta (worker, "name", "gpu7");
        char *wpath = zsys_sprintf ("%s/gpu7.key", cdir);
        assert (zcert_save_public (worker, wpath) == 0);
        vdgx_acl_t *cacl = vdgx_acl_new ();
        assert (vdgx_acl_zap_bind (cacl, cdir));
        assert (vdgx_acl_curve (cacl));
        zsock_t *router = zsock_new (ZMQ_ROUTER);
        zcert_apply (server, router);
        zsock_set_curve_server (router, 1);
        zsock_set_zap_domain (router, "vdgx");
        int port = zsock_bind (router, "tcp://127.0.0.1:*");
        assert (port > 0);
        zsock_t *dealer = zsock_new (ZMQ_DEALER);
        zcert_apply (worker, dealer);
        zsock_set_curve_serverkey (dealer, zcert_public_txt (server));
        assert (zsock_connect (dealer, "tcp://127.0.0.1:%d", port) == 0);
        zstr_send (dealer, "hello");
        zpoller_t *poller = zpoller_new (router, cacl->zap, NULL);
        zmsg_t *msg = NULL;
        for (int i = 0; i < 50 && !msg; i++) {
            void *which = zpoller_wait (poller, 100);
            if (which == cacl->zap)
                assert (vdgx_acl_zap_handle (cacl) == 0);
            else
            if (which == router)
                msg = zmsg_recv (router);
        }
        assert (msg);
        zframe_t *identity = zmsg_pop (msg);
        vdgx_acl_peer (cacl, zmsg_first (msg), &peer);
        assert (peer.role == VDGX_ROLE_WORKER);
        assert (streq (peer.owner, "curve:gpu7"));
        assert (streq (peer.key, zcert_public_txt (worker)));
        assert (streq (peer.address, "127.0.0.1"));
        assert (vdgx_peer_may_serve (&peer, "wan21-tiny"));
        assert (vdgx_peer_may_serve (&peer, "testgen"));
        assert (!vdgx_peer_may_serve (&peer, "wan21-1.3b"));
        zframe_destroy (&identity);
        zmsg_destroy (&msg);
        //  A key not in allowed/ never gets a message through.
        zsock_t *stranger = zsock_new (ZMQ_DEALER);
        zcert_t *scert = zcert_new ();
        zcert_apply (scert, stranger);
        zsock_set_curve_serverkey (stranger, zcert_public_txt (server));
        assert (zsock_connect (stranger, "tcp://127.0.0.1:%d", port) == 0);
        zstr_send (stranger, "let me in");
        for (int i = 0; i < 10; i++) {
            void *which = zpoller_wait (poller, 50);
            if (which == cacl->zap)
                assert (vdgx_acl_zap_handle (cacl) == 0);
            else
                assert (which != router);
        }
        zpoller_destroy (&poller);
        zsock_destroy (&stranger);
        zcert_destroy (&scert);
        zsock_destroy (&dealer);
        zsock_destroy (&router);
        vdgx_acl_destroy (&cacl);
        zcert_destroy (&worker);
        zcert_destroy (&server);
        unlink (wpath);
        zstr_free (&wpath);
        rmdir (cdir);
    }
    vdgx_acl_destroy (&acl);
    printf ("OK\n");
}
