/*  vdgx-mkcert PATH [ALLOWED_DIR]: writes a new CURVE certificate (zcert): the public part to
    PATH, the secret to PATH_secret; with ALLOWED_DIR, also its public part there (the
    broker's --curve DIR/allowed/), so the key is accepted. Used to set up CURVE between
    the broker and workers or clients on other hosts (docs/QUICKSTART.md). */
#include <czmq.h>

int
main (int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf (stderr, "usage: vdgx-mkcert PATH [ALLOWED_DIR]\n");
        return 2;
    }
    zcert_t *cert = zcert_new ();
    if (!cert || zcert_save (cert, argv [1]) != 0) {
        fprintf (stderr, "vdgx-mkcert: cannot write %s\n", argv [1]);
        zcert_destroy (&cert);
        return 1;
    }
    int rc = 0;
    if (argc == 3) {
        const char *base = strrchr (argv [1], '/');
        char *path = zsys_sprintf ("%s/%s", argv [2], base? base + 1: argv [1]);
        if (zsys_dir_create ("%s", argv [2]) != 0 || zcert_save_public (cert, path) != 0) {
            fprintf (stderr, "vdgx-mkcert: cannot write %s\n", path);
            rc = 1;
        }
        zstr_free (&path);
    }
    zcert_destroy (&cert);
    return rc;
}
