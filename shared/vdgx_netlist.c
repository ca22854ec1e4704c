/*  vdgx_netlist.c - IP networks and special-purpose addresses (see vdgx_netlist.h). */
#include "vdgx_netlist.h"
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NETS_MAX      64

typedef struct {
    int family;                 //  AF_INET / AF_INET6
    uint8_t addr [16];
    int bits;
} s_net_t;

struct _vdgx_netlist_t {
    s_net_t nets [S_NETS_MAX];
    size_t nnets;
};

vdgx_netlist_t *
vdgx_netlist_new (void)
{
    return (vdgx_netlist_t *) calloc (1, sizeof (vdgx_netlist_t));
}

void
vdgx_netlist_destroy (vdgx_netlist_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  ::ffff:a.b.c.d -> a.b.c.d
static void
s_unmap (int *family, uint8_t addr [16])
{
    static const uint8_t mapped [12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };
    if (*family == AF_INET6 && memcmp (addr, mapped, 12) == 0) {
        memmove (addr, addr + 12, 4);
        memset (addr + 4, 0, 12);
        *family = AF_INET;
    }
}

int
vdgx_netlist_parse_ip (const char *text, int *family, uint8_t addr [16])
{
    memset (addr, 0, 16);
    if (inet_pton (AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton (AF_INET6, text, addr) == 1) {
        *family = AF_INET6;
        s_unmap (family, addr);
        return 0;
    }
    return -1;
}

int
vdgx_netlist_sockaddr (const struct sockaddr *sa, int *family, uint8_t addr [16])
{
    memset (addr, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy (addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        *family = AF_INET;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy (addr, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
        *family = AF_INET6;
        s_unmap (family, addr);
        return 0;
    }
    return -1;
}

static bool
s_net_has (const s_net_t *net, int family, const uint8_t addr [16])
{
    if (net->family != family)
        return false;
    int bits = net->bits;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8? 0xff: (uint8_t) (0xff << (8 - bits));
        if ((addr [i] & mask) != (net->addr [i] & mask))
            return false;
    }
    return true;
}

int
vdgx_netlist_add (vdgx_netlist_t *self, const char *list, char *error, size_t errsize)
{
    assert (self);
    if (!list)
        return 0;
    char *copy = strdup (list);
    size_t had = self->nnets;
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r (copy, ", \t", &save); item; item = strtok_r (NULL, ", \t", &save)) {
        if (self->nnets >= S_NETS_MAX) {
            snprintf (error, errsize, "more than %d networks", S_NETS_MAX);
            rc = -1;
            break;
        }
        s_net_t *net = &self->nets [self->nnets];
        char *slash = strchr (item, '/');
        if (slash)
            *slash = 0;
        //  The prefix counts in the written family (::ffff:10.0.0.0/104 is 10.0.0.0/8).
        bool mapped6 = strchr (item, ':') != NULL;
        if (vdgx_netlist_parse_ip (item, &net->family, net->addr)) {
            snprintf (error, errsize, "'%s' is not an IP address", item);
            rc = -1;
            break;
        }
        int max = mapped6? 128: 32;
        net->bits = net->family == AF_INET? 32: 128;
        if (slash) {
            char *end = NULL;
            long bits = strtol (slash + 1, &end, 10);
            if (!*(slash + 1) || *end || bits < 0 || bits > max
            ||  (mapped6 && net->family == AF_INET && bits < 96)) {
                snprintf (error, errsize, "'%s': the prefix length must be %d..%d", slash + 1,
                          mapped6 && net->family == AF_INET? 96: 0, max);
                rc = -1;
                break;
            }
            net->bits = (int) (mapped6 && net->family == AF_INET? bits - 96: bits);
        }
        self->nnets++;
    }
    if (rc)
        self->nnets = had;
    free (copy);
    return rc;
}

size_t
vdgx_netlist_size (vdgx_netlist_t *self)
{
    assert (self);
    return self->nnets;
}

bool
vdgx_netlist_has (vdgx_netlist_t *self, int family, const uint8_t addr [16])
{
    assert (self && addr);
    uint8_t a [16];
    memcpy (a, addr, 16);
    s_unmap (&family, a);
    for (size_t i = 0; i < self->nnets; i++)
        if (s_net_has (&self->nets [i], family, a))
            return true;
    return false;
}

bool
vdgx_netlist_is_special (int family, const uint8_t addr [16])
{
    uint8_t a [16];
    memcpy (a, addr, 16);
    s_unmap (&family, a);
    if (family == AF_INET6) {
        static const uint8_t zero [12] = { 0 };
        static const uint8_t nat64 [12] = { 0,0x64,0xff,0x9b, 0,0,0,0, 0,0,0,0 };
        if (memcmp (a, zero, 12) == 0 || memcmp (a, nat64, 12) == 0) {
            //  ::, ::1, ::a.b.c.d (IPv4-compatible), 64:ff9b::a.b.c.d: by the IPv4 address
            //  (:: and ::1 land in 0.0.0.0/8, which is refused).
            memmove (a, a + 12, 4);
            memset (a + 4, 0, 12);
            family = AF_INET;
        }
        else
            return a [0] == 0xff                        //  ff00::/8 multicast
                || (a [0] & 0xfe) == 0xfc               //  fc00::/7 unique-local
                || (a [0] == 0xfe && (a [1] & 0xc0) == 0x80)    //  fe80::/10 link-local
                || (a [0] == 0xfe && (a [1] & 0xc0) == 0xc0)    //  fec0::/10 site-local
                || (a [0] == 0x20 && a [1] == 0x01 && a [2] == 0x0d && a [3] == 0xb8)   //  doc
                || (a [0] == 0x01 && a [1] == 0 && a [2] == 0 && a [3] == 0);  //  100::/64 discard
    }
    if (family != AF_INET)
        return true;
    return a [0] == 0                                   //  0.0.0.0/8 (unspecified)
        || a [0] == 10                                  //  10/8
        || a [0] == 127                                 //  loopback
        || (a [0] == 100 && (a [1] & 0xc0) == 64)       //  100.64/10 shared (CGNAT)
        || (a [0] == 169 && a [1] == 254)               //  link-local (cloud metadata)
        || (a [0] == 172 && (a [1] & 0xf0) == 16)       //  172.16/12
        || (a [0] == 192 && a [1] == 0 && a [2] == 0)   //  192.0.0/24 IETF protocol
        || (a [0] == 192 && a [1] == 168)               //  192.168/16
        || (a [0] == 198 && (a [1] & 0xfe) == 18)       //  198.18/15 benchmarking
        || a [0] >= 224;                                //  multicast, reserved, broadcast
}

void
vdgx_netlist_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_netlist: ");
    static const char *special [] = {
        "0.0.0.0", "127.0.0.1", "127.255.1.2", "10.1.2.3", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "239.1.2.3",
        "255.255.255.255", "240.0.0.1", "198.18.0.1", "192.0.0.8",
        "::", "::1", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
        "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2001:db8::1",
    };
    static const char *public [] = {
        "93.184.215.14", "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.1", "100.128.0.1",
        "169.253.1.1", "11.0.0.1", "223.255.255.1", "2606:4700::1111", "2a00:1450:4001::1",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "fe00::1",
    };
    int family;
    uint8_t addr [16];
    for (size_t i = 0; i < sizeof special / sizeof special [0]; i++) {
        assert (vdgx_netlist_parse_ip (special [i], &family, addr) == 0);
        if (!vdgx_netlist_is_special (family, addr))
            fprintf (stderr, "%s should be special\n", special [i]);
        assert (vdgx_netlist_is_special (family, addr));
    }
    for (size_t i = 0; i < sizeof public / sizeof public [0]; i++) {
        assert (vdgx_netlist_parse_ip (public [i], &family, addr) == 0);
        if (vdgx_netlist_is_special (family, addr))
            fprintf (stderr, "%s should be public\n", public [i]);
        assert (!vdgx_netlist_is_special (family, addr));
    }
    assert (vdgx_netlist_parse_ip ("::ffff:1.2.3.4", &family, addr) == 0 && family == AF_INET
            && addr [0] == 1 && addr [3] == 4);
    assert (vdgx_netlist_parse_ip ("localhost", &family, addr) == -1);

    vdgx_netlist_t *list = vdgx_netlist_new ();
    char err [128];
    assert (vdgx_netlist_add (list, "127.0.0.0/8, 10.1.0.0/16 fd00::/8\t192.0.2.7", err, sizeof err) == 0);
    assert (vdgx_netlist_size (list) == 4);
    const char *in [] = { "127.0.0.1", "::ffff:127.9.9.9", "10.1.255.1", "fdab::1", "192.0.2.7" };
    const char *out [] = { "10.2.0.1", "128.0.0.1", "::1", "fe80::1", "192.0.2.8" };
    for (size_t i = 0; i < 5; i++) {
        assert (vdgx_netlist_parse_ip (in [i], &family, addr) == 0);
        assert (vdgx_netlist_has (list, family, addr));
        assert (vdgx_netlist_parse_ip (out [i], &family, addr) == 0);
        assert (!vdgx_netlist_has (list, family, addr));
    }
    //  A mapped network counts its prefix in IPv6 bits.
    assert (vdgx_netlist_add (list, "::ffff:172.20.0.0/112", err, sizeof err) == 0);
    assert (vdgx_netlist_parse_ip ("172.20.3.4", &family, addr) == 0 && vdgx_netlist_has (list, family, addr));
    assert (vdgx_netlist_parse_ip ("172.21.3.4", &family, addr) == 0 && !vdgx_netlist_has (list, family, addr));
    //  Bad lists: refused whole, with a message.
    const char *bad [] = { "10.0.0.0/33", "example.org", "10.0.0.0/", "::1/129", "10.0.0.0/8x",
                           "1.2.3.4, nope", "::ffff:1.2.3.4/95" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        size_t had = vdgx_netlist_size (list);
        *err = 0;
        assert (vdgx_netlist_add (list, bad [i], err, sizeof err) == -1 && *err);
        assert (vdgx_netlist_size (list) == had);
    }
    //  Socket addresses.
    struct sockaddr_in6 s6;
    memset (&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    inet_pton (AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    assert (vdgx_netlist_sockaddr ((struct sockaddr *) &s6, &family, addr) == 0 && family == AF_INET
            && addr [0] == 127);
    vdgx_netlist_destroy (&list);
    assert (list == NULL);
    printf ("OK\n");
}
