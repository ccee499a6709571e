/* daemon/pii.h: applicants' identity numbers never reach the disk.
 *
 * At the edge, before a window.intake joins a batch, the daemon replaces
 * args.applicant.id with a keyed hash (for matching one applicant's cases)
 * and a masked form (first 3 and last 4 characters, for display). The WAL
 * record, and so the state and every replay, hold only those two. The key
 * is the hall's own secret, DATA/pii.key (32 random bytes, mode 0600,
 * made at the first start, and never again once the hall has intakes):
 * it is never in the WAL or the config, so a copy of the log cannot be
 * searched for a known number. Back it up apart from the WAL. */
#ifndef HALLQ_PII_H
#define HALLQ_PII_H

#include "daemon/hall/store.h"
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PII_KEY_LEN 32

/* Loads DATA/pii.key. When it is missing: for a hall with no intake yet
 * (no case in the state `st`, recovered, and no window.intake record in
 * the WAL in `wal_dir`) makes a new one durably (tmp, fsync, rename,
 * fsync of DATA); for one with intakes refuses, saying where the key
 * belongs and how to restore it. 0, or -1 with err set. */
int pii_key_load(const char *data_dir, hall_store *st, const char *wal_dir,
                 uint8_t key[PII_KEY_LEN], char *err, size_t errlen);

/* Re-packs a window.intake request {id, op, args} into out with
 * args.applicant = {kind, name?, id_hash, id_masked}, the name masked
 * unless `keep_names` (pii_mask_name). Returns 1 when it did,
 * 0 when the request has no applicant id to replace (out untouched: the
 * handler reports what is missing), -1 out of memory. */
int pii_rewrite_intake(const uint8_t key[PII_KEY_LEN], bool keep_names, const proto_request *rq,
                       proto_buf *out);

/* The masked form of an applicant's name (config pii.names: mask): its
 * first character (UTF-8 aware) and a '*' for each other one, at most
 * PII_NAME_STARS_MAX: 张三 -> 张*, 欧阳娜娜 -> 欧***, Zhang -> Z****. Writes
 * a NUL-terminated string into out and returns its length. */
#define PII_NAME_STARS_MAX 31
size_t pii_mask_name(const char *name, size_t n, char *out, size_t cap);

/* The masked form of an identity number (out: at least 24 bytes). */
void pii_mask(const char *id, size_t n, char *out, size_t cap);

#endif
