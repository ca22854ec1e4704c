/*  vdgx_netlist.h - IP networks: a list of CIDRs (operator allow / trust lists) and the
    classification of special-purpose addresses (loopback, private, link-local, ...).

    Addresses are 16 bytes with a family (AF_INET uses the first 4). An IPv4-mapped IPv6
    address (::ffff:a.b.c.d) is always handled as its IPv4 address.
*/
#ifndef VDGX_NETLIST_H_INCLUDED
#define VDGX_NETLIST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_netlist_t vdgx_netlist_t;

vdgx_netlist_t *vdgx_netlist_new (void);
void vdgx_netlist_destroy (vdgx_netlist_t **self_p);
//  Adds networks: a comma or space separated list of CIDRs ("10.0.0.0/8, fd00::/8"; an
//  address without /N is one host). 0, or -1 with a message (nothing of a bad list is kept).
int vdgx_netlist_add (vdgx_netlist_t *self, const char *list, char *error, size_t errsize);
//  Number of networks held.
size_t vdgx_netlist_size (vdgx_netlist_t *self);
//  True when the address is in one of the networks.
bool vdgx_netlist_has (vdgx_netlist_t *self, int family, const uint8_t addr [16]);

//  Parses an IP address (text). 0, or -1 when it is not one.
int vdgx_netlist_parse_ip (const char *text, int *family, uint8_t addr [16]);
//  The address of a socket address (AF_INET / AF_INET6). 0, or -1 for another family.
int vdgx_netlist_sockaddr (const struct sockaddr *sa, int *family, uint8_t addr [16]);
//  True for an address that is not a public unicast one: unspecified, loopback, private
//  (RFC 1918, shared 100.64/10), link-local, unique-local, site-local, multicast, reserved,
//  benchmarking; IPv4-compatible and NAT64 (64:ff9b::/96) addresses by their IPv4 address.
bool vdgx_netlist_is_special (int family, const uint8_t addr [16]);

void vdgx_netlist_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
