/*  vdgx_acl.h - who a broker peer is, and what it may do (docs/SECURITY.md).

    With CURVE, the broker's ZAP handler (this class) accepts the public keys in
    DIR/allowed/ and hands each connection the metadata of its certificate:
        role   = "admin" | "user" | "worker"   (absent: "user")
        models = "wan21-1.3b,wan21-tiny" | "*" (a worker's models; absent: none)
        name   = "alice"                       (the owner name of its jobs; absent: the key)
    libzmq attaches that metadata to every message of the connection, so classifying a
    message costs a few property look-ups, not a certificate search.

    Without CURVE, a peer on loopback (or IPC) or in a trusted network (--trust-net CIDR)
    is trusted as before: an admin client and a worker for any model. Any other plain peer
    is a user client named by its address and may not register as a worker.

    Attempt tokens: the broker gives every dispatch of a job a token, HMAC-SHA256 of the job
    id and attempt under a secret kept in the data directory (so it survives a restart); the
    worker echoes it, and results, chunks and resends that do not carry it are refused.

        vdgx_acl_t *acl = vdgx_acl_new ();
        vdgx_acl_trust_nets (acl, "10.1.0.0/16", error, sizeof error);
        vdgx_acl_load_secret (acl, "/var/lib/vdgx/token.key", error, sizeof error);
        zsock_t *zap = vdgx_acl_zap_bind (acl, "/etc/vdgx/curve/allowed");   //  CURVE only
        ... zloop reader on zap -> vdgx_acl_zap_handle (acl, zap);
        vdgx_peer_t peer;
        vdgx_acl_peer (acl, frame, &peer);
        if (vdgx_peer_may_serve (&peer, "wan21-tiny")) ...
        vdgx_acl_destroy (&acl);
*/
#ifndef VDGX_ACL_H_INCLUDED
#define VDGX_ACL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>
#include "vdgx_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VDGX_ROLE_USER = 0, VDGX_ROLE_ADMIN, VDGX_ROLE_WORKER } vdgx_role_t;

#define VDGX_MODELS_META_MAX 1024

typedef struct {
    vdgx_role_t role;
    bool any_model;                         //  a worker for every model ("*" or trusted plain)
    char models [VDGX_MODELS_META_MAX + 1]; //  ",m1,m2," (commas around each) when not any
    char owner [VDGX_OWNER_MAX + 1];        //  "" for a trusted plain peer (the operator)
    char address [64];                      //  the peer's IP, "" for IPC / inproc
    char key [48];                          //  CURVE: its public key (Z85), else ""
} vdgx_peer_t;

typedef struct _vdgx_acl_t vdgx_acl_t;

vdgx_acl_t *vdgx_acl_new (void);
void vdgx_acl_destroy (vdgx_acl_t **self_p);

//  Adds trusted networks: a comma or space separated list of CIDRs ("10.0.0.0/8 fd00::/8";
//  an address without /N is one host). 0, or -1 with a message.
int vdgx_acl_trust_nets (vdgx_acl_t *self, const char *list, char *error, size_t errsize);
//  True when address (text, "" = IPC/inproc) is loopback, local or in a trusted network.
bool vdgx_acl_trusted_address (vdgx_acl_t *self, const char *address);

//  CURVE: binds the ZAP handler (inproc://zeromq.zap.01, one per process) for the
//  certificates in allowed_dir. Returns the socket to poll, NULL on failure.
zsock_t *vdgx_acl_zap_bind (vdgx_acl_t *self, const char *allowed_dir);
//  The ZAP handler socket (NULL without CURVE).
zsock_t *vdgx_acl_zap (vdgx_acl_t *self);
//  Answers one waiting ZAP request. 0, or -1 when nothing could be read.
int vdgx_acl_zap_handle (vdgx_acl_t *self);
//  Whether CURVE is on (vdgx_acl_zap_bind succeeded).
bool vdgx_acl_curve (vdgx_acl_t *self);

//  Classifies the sender of a received frame (any frame of the message).
void vdgx_acl_peer (vdgx_acl_t *self, zframe_t *frame, vdgx_peer_t *peer);
//  Whether the peer may register as a worker for model.
bool vdgx_peer_may_serve (const vdgx_peer_t *peer, const char *model);

//  The token secret: read from path, or made (32 random bytes, mode 0600) when absent.
int vdgx_acl_load_secret (vdgx_acl_t *self, const char *path, char *error, size_t errsize);
//  The attempt token of (id, attempt): 32 lowercase hex digits + NUL.
void vdgx_acl_token (vdgx_acl_t *self, const char *id, uint32_t attempt,
                     char token [VDGX_TOKEN_MAX + 1]);
//  Constant-time comparison of a presented token ("" or NULL never matches).
bool vdgx_acl_token_ok (vdgx_acl_t *self, const char *id, uint32_t attempt, const char *token);

void vdgx_acl_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
