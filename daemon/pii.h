/* daemon/pii.h: applicants' identity numbers never reach the disk.
 *
 * At the edge, before a window.intake joins a batch, the daemon replaces
 * args.applicant.id with a keyed hash (for matching one applicant's cases)
 * and a masked form (first 3 and last 4 characters, for display). The WAL
 * record, and so the state and every replay, hold only those two. The key
 * is the hall's own secret, DATA/pii.key (32 random bytes, mode 0600,
 * made at the first start): it is never in the WAL or the config, so a
 * copy of the log cannot be searched for a known number. */
#ifndef HALLQ_PII_H
#define HALLQ_PII_H

#include "proto/proto.h"

#include <stddef.h>
#include <stdint.h>

#define PII_KEY_LEN 32

/* Loads DIR/pii.key, creating it when absent. 0, or -1 with err set. */
int pii_key_load(const char *data_dir, uint8_t key[PII_KEY_LEN], char *err, size_t errlen);

/* Re-packs a window.intake request {id, op, args} into out with
 * args.applicant = {kind, name?, id_hash, id_masked}. Returns 1 when it did,
 * 0 when the request has no applicant id to replace (out untouched: the
 * handler reports what is missing), -1 out of memory. */
int pii_rewrite_intake(const uint8_t key[PII_KEY_LEN], const proto_request *rq, proto_buf *out);

/* The masked form of an identity number (out: at least 24 bytes). */
void pii_mask(const char *id, size_t n, char *out, size_t cap);

#endif
