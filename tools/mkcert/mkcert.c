/*  vdgx-mkcert - makes a CURVE certificate, named as every VideosDGX program expects:

        vdgx-mkcert [--role admin|user|worker] [--models LIST] [--name NAME] DIR/NAME [ALLOWED_DIR]

    writes DIR/NAME.key (the public part, to give to peers) and DIR/NAME.key_secret (both
    keys, to keep); with ALLOWED_DIR also ALLOWED_DIR/NAME.key, so a broker started with
    --curve DIR accepts it (its allowed keys are DIR/allowed/). The broker's own pair is
    DIR/broker.key + DIR/broker.key_secret (`vdgx-mkcert DIR/broker`; the broker makes it on
    its first start when it is missing, and otherwise uses it). Workers and clients take
    --curve-server-key DIR/broker.key and --curve-cert NAME.key_secret. The role (admin, user
    or worker; default user), the models a worker may serve (comma list, or "*") and the owner
    name go into the certificate's metadata, which is what the broker reads
    (docs/SECURITY.md). See docs/QUICKSTART.md, section 4. */
#include <czmq.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: vdgx-mkcert [--role admin|user|worker] [--models LIST] [--name NAME] DIR/NAME [ALLOWED_DIR]\n"
        "  writes DIR/NAME.key (public part, for peers) and DIR/NAME.key_secret (keep it);\n"
        "  with ALLOWED_DIR, also ALLOWED_DIR/NAME.key so a broker with --curve DIR accepts it\n"
        "  (ALLOWED_DIR is DIR/allowed for a broker started with --curve DIR).\n"
        "  The broker's pair is DIR/broker.key + DIR/broker.key_secret: vdgx-mkcert DIR/broker.\n"
        "  Workers and clients: --curve-server-key DIR/broker.key --curve-cert NAME.key_secret.\n"
        "  --role (default user), --models (workers: comma list or *), --name (the owner) go into\n"
        "  the certificate's metadata (docs/SECURITY.md). Existing files are never overwritten.\n");
}

int
main (int argc, char **argv)
{
    const char *role = NULL, *models = NULL, *name = NULL;
    const char *paths [2] = { NULL, NULL };
    int npaths = 0;
    for (int i = 1; i < argc; i++) {
        const char *val = i + 1 < argc? argv [i + 1]: NULL;
        if (streq (argv [i], "-h") || streq (argv [i], "--help")) {
            s_usage (stdout);
            return 0;
        }
        else
        if (streq (argv [i], "--role") && val)
            role = val, i++;
        else
        if (streq (argv [i], "--models") && val)
            models = val, i++;
        else
        if (streq (argv [i], "--name") && val)
            name = val, i++;
        else
        if (argv [i][0] == '-' || !argv [i][0] || npaths == 2) {
            s_usage (stderr);
            return 2;
        }
        else
            paths [npaths++] = argv [i];
    }
    if (npaths == 0) {
        s_usage (stderr);
        return 2;
    }
    if (role && !streq (role, "admin") && !streq (role, "user") && !streq (role, "worker")) {
        fprintf (stderr, "vdgx-mkcert: --role must be admin, user or worker\n");
        return 2;
    }
    if (models && (!role || !streq (role, "worker"))) {
        fprintf (stderr, "vdgx-mkcert: --models is for --role worker\n");
        return 2;
    }
    //  NAME.key: a path that already ends in .key is taken as it is.
    size_t len = strlen (paths [0]);
    char *path = len > 4 && streq (paths [0] + len - 4, ".key")? strdup (paths [0])
                                                               : zsys_sprintf ("%s.key", paths [0]);
    char *secret = zsys_sprintf ("%s_secret", path);
    int rc = 0;
    zcert_t *cert = NULL;
    if (zsys_file_exists (path) || zsys_file_exists (secret)) {
        fprintf (stderr, "vdgx-mkcert: %s exists; not overwritten\n", path);
        rc = 1;
        goto done;
    }
    const char *slash = strrchr (path, '/');
    if (slash && slash != path) {
        char *dir = strndup (path, (size_t) (slash - path));
        zsys_dir_create ("%s", dir);
        free (dir);
    }
    cert = zcert_new ();
    if (cert && role)
        zcert_set_meta (cert, "role", "%s", role);
    if (cert && models)
        zcert_set_meta (cert, "models", "%s", models);
    if (cert && name)
        zcert_set_meta (cert, "name", "%s", name);
    if (!cert || zcert_save (cert, path) != 0) {
        fprintf (stderr, "vdgx-mkcert: cannot write %s\n", path);
        rc = 1;
        goto done;
    }
    printf ("wrote %s (public) and %s (secret)\n", path, secret);
    if (paths [1]) {
        const char *base = strrchr (path, '/');
        char *allowed = zsys_sprintf ("%s/%s", paths [1], base? base + 1: path);
        if (zsys_dir_create ("%s", paths [1]) != 0 || zcert_save_public (cert, allowed) != 0) {
            fprintf (stderr, "vdgx-mkcert: cannot write %s\n", allowed);
            rc = 1;
        }
        else
            printf ("wrote %s (allowed)\n", allowed);
        zstr_free (&allowed);
    }
done:
    zcert_destroy (&cert);
    zstr_free (&path);
    zstr_free (&secret);
    return rc;
}
