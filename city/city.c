/* city/city.c: the connection and the stream (city.h). */
#include "city/city.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

natsStatus city_connect(const char *who, const char *urls, const char *creds, jsOptions *jo,
                        natsConnection **nc, jsCtx **js)
{
    natsOptions *o = NULL;
    const char *servers[16];
    int n = 0;
    char *copy = strdup(urls), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
        servers[n++] = t;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, servers, n);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    if (s == NATS_OK && creds)
        s = natsOptions_SetUserCredentialsFromFiles(o, creds, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    if (s == NATS_NOT_YET_CONNECTED)
        s = NATS_OK; /* it keeps trying in the background */
    if (s == NATS_OK)
        s = natsConnection_JetStream(js, *nc, jo);
    if (s != NATS_OK)
        fprintf(stderr, "%s: nats %s: %s\n", who, urls, natsStatus_GetText(s));
    natsOptions_Destroy(o);
    free(copy);
    return s;
}

natsStatus city_ensure_stream(const char *who, jsCtx *js)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, CITY_STREAM, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return NATS_OK;
    }
    if (s != NATS_NOT_FOUND) {
        fprintf(stderr, "%s: stream " CITY_STREAM ": %s (%d)\n", who, natsStatus_GetText(s),
                (int)jerr);
        return s;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {CITY_SUBJECTS};
    sc.Name = CITY_STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Duplicates = 2ll * 60 * 1000 * 1000 * 1000; /* 2 min, in ns: the de-duplication window */
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (s == NATS_OK || jerr == JSStreamNameExistErr) { /* another process made it first */
        jsStreamInfo_Destroy(si);
        return NATS_OK;
    }
    fprintf(stderr, "%s: cannot create stream " CITY_STREAM ": %s (%d)\n", who,
            natsStatus_GetText(s), (int)jerr);
    return s;
}
