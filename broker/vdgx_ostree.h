/*  vdgx_ostree.h - an order-statistic tree: a sorted map of uint64 keys to borrowed values
    that also answers "how many keys are smaller than k" (rank) and "the n-th key".

    A treap (a binary search tree that is also a heap on random node priorities) whose
    nodes count their subtree, so insert, remove, lookup, rank and nth are O(log n)
    expected, whatever the order the keys arrive in. The broker's job queue uses it for
    queue positions: a job's position is its rank in its model's tree.
*/
#ifndef VDGX_OSTREE_H_INCLUDED
#define VDGX_OSTREE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_ostree_t vdgx_ostree_t;

vdgx_ostree_t *vdgx_ostree_new (void);
//  Frees the nodes; the values are the caller's.
void vdgx_ostree_destroy (vdgx_ostree_t **self_p);

//  Adds key -> value. 0, or -1 when key is already there (nothing changes).
int vdgx_ostree_insert (vdgx_ostree_t *self, uint64_t key, void *value);
//  Removes key; returns its value, or NULL when key is not there.
void *vdgx_ostree_remove (vdgx_ostree_t *self, uint64_t key);
void *vdgx_ostree_lookup (vdgx_ostree_t *self, uint64_t key);
//  Number of keys smaller than key (key itself need not be there).
size_t vdgx_ostree_rank (vdgx_ostree_t *self, uint64_t key);
//  The value of the n-th smallest key (0-based), its key in *key_p (may be NULL);
//  NULL when n >= size.
void *vdgx_ostree_nth (vdgx_ostree_t *self, size_t n, uint64_t *key_p);
//  The value of the smallest key, or NULL when empty.
void *vdgx_ostree_first (vdgx_ostree_t *self, uint64_t *key_p);
size_t vdgx_ostree_size (vdgx_ostree_t *self);

void vdgx_ostree_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
