/*  vdgx-mkcert [--role ROLE] [--models LIST] [--name NAME] PATH [ALLOWED_DIR]: writes a new
    CURVE certificate (zcert): the public part to PATH, the secret to PATH_secret; with
    ALLOWED_DIR, also its public part there (the broker's --curve DIR/allowed/), so the key is
    accepted. The role (admin, user or worker; default user), the models a worker may serve
    (comma list, or "*") and the owner name go into the certificate's metadata, which is what
    the broker reads (docs/SECURITY.md). Used to set up CURVE between the broker and workers
    or clients on other hosts (docs/QUICKSTART.md). */
#include <czmq.h>

static int
s_usage (void)
{
    fprintf (stderr, "usage: vdgx-mkcert [--role admin|user|worker] [--models LIST] [--name NAME] "
                     "PATH [ALLOWED_DIR]\n");
    return 2;
}

int
main (int argc, char **argv)
{
    const char *role = NULL, *models = NULL, *name = NULL;
    const char *paths [2] = { NULL, NULL };
    int npaths = 0;
    for (int i = 1; i < argc; i++) {
        const char *val = i + 1 < argc? argv [i + 1]: NULL;
        if (streq (argv [i], "--role") && val)
            role = val, i++;
        else
        if (streq (argv [i], "--models") && val)
            models = val, i++;
        else
        if (streq (argv [i], "--name") && val)
            name = val, i++;
        else
        if (argv [i][0] == '-' || npaths == 2)
            return s_usage ();
        else
            paths [npaths++] = argv [i];
    }
    if (npaths == 0)
        return s_usage ();
    if (role && !streq (role, "admin") && !streq (role, "user") && !streq (role, "worker")) {
        fprintf (stderr, "vdgx-mkcert: --role must be admin, user or worker\n");
        return 2;
    }
    if (models && (!role || !streq (role, "worker"))) {
        fprintf (stderr, "vdgx-mkcert: --models is for --role worker\n");
        return 2;
    }
    zcert_t *cert = zcert_new ();
    if (cert && role)
        zcert_set_meta (cert, "role", "%s", role);
    if (cert && models)
        zcert_set_meta (cert, "models", "%s", models);
    if (cert && name)
        zcert_set_meta (cert, "name", "%s", name);
    if (!cert || zcert_save (cert, paths [0]) != 0) {
        fprintf (stderr, "vdgx-mkcert: cannot write %s\n", paths [0]);
        zcert_destroy (&cert);
        return 1;
    }
    int rc = 0;
    if (paths [1]) {
        const char *base = strrchr (paths [0], '/');
        char *path = zsys_sprintf ("%s/%s", paths [1], base? base + 1: paths [0]);
        if (zsys_dir_create ("%s", paths [1]) != 0 || zcert_save_public (cert, path) != 0) {
            fprintf (stderr, "vdgx-mkcert: cannot write %s\n", path);
            rc = 1;
        }
        zstr_free (&path);
    }
    zcert_destroy (&cert);
    return rc;
}
