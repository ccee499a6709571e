/* city/city.h: what hallq-ship and hallq-centre share (docs/CITY.md):
 * the stream's name and settings, the subject and headers of a record. */
#ifndef HALLQ_CITY_H
#define HALLQ_CITY_H

#include <nats/nats.h>

#define CITY_STREAM "HALLQ_WAL"
#define CITY_SUBJECT_PREFIX "hallq.wal."
#define CITY_SUBJECTS "hallq.wal.>"

/* Connects to the comma-separated URLs (reconnecting for ever), with the
 * credentials file when not NULL, and opens a JetStream context (opts may
 * be NULL). Returns NATS_OK or the status, with a line on stderr. */
natsStatus city_connect(const char *who, const char *urls, const char *creds, jsOptions *jo,
                        natsConnection **nc, jsCtx **js);

/* Creates the stream HALLQ_WAL (file storage, subjects hallq.wal.>) when
 * it does not exist yet. */
natsStatus city_ensure_stream(const char *who, jsCtx *js);

#endif
