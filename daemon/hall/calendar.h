/* daemon/hall/calendar.h: the hall's calendar: local days, working days,
 * business days and deadlines in working days.
 *
 * A "day" is a day number counted from 1970-01-01 in the hall's local time
 * (UTC plus the configured offset). Everything here is pure arithmetic on
 * the config: no clock, no time zone database, no I/O. */
#ifndef HALLQ_HALL_CALENDAR_H
#define HALLQ_HALL_CALENDAR_H

#include "daemon/hall/config.h"

#include <stdbool.h>
#include <stdint.h>

#define HALL_DAY_MS 86400000LL

int32_t hall_day_from_civil(int y, int m, int d);
void hall_civil_from_day(int32_t day, int *y, int *m, int *d);
int hall_days_in_month(int y, int m);
/* 0 = Sunday ... 6 = Saturday. */
int hall_weekday(int32_t day);

int32_t hall_local_day(const hall_calendar *cal, int64_t ms);
/* Minutes since local midnight. */
int hall_local_minute(const hall_calendar *cal, int64_t ms);
/* UTC ms of local midnight of `day` plus `minute` minutes. */
int64_t hall_local_ms(const hall_calendar *cal, int32_t day, int minute);

bool hall_is_working_day(const hall_calendar *cal, int32_t day);
/* The first working day strictly after `day`. */
int32_t hall_next_working_day(const hall_calendar *cal, int32_t day);

/* The business day a ticket taken at `ms` belongs to: today if it is a
 * working day and the day has not closed yet, else the next working day. */
int32_t hall_business_day(const hall_calendar *cal, int close_min, int64_t ms);

/* The day a case accepted at `ms` with a limit of `days` working days is
 * due: the days-th working day after the acceptance day (that day itself
 * not counted; 0 days: the acceptance day). */
int32_t hall_deadline_day(const hall_calendar *cal, int64_t ms, int days);
/* Working days in [from, to) (0 when to <= from). */
int hall_working_days_between(const hall_calendar *cal, int32_t from, int32_t to);
/* `day` moved later by n working days. */
int32_t hall_add_working_days(const hall_calendar *cal, int32_t day, int n);

/* "YYYY-MM-DD" (11 bytes with the NUL). */
void hall_day_format(int32_t day, char out[11]);
/* "YYYYMMDD" (9 bytes with the NUL). */
void hall_day_compact(int32_t day, char out[9]);
/* Parses "YYYY-MM-DD" strictly; -1 if malformed. */
int hall_day_parse(const char *s, size_t n, int32_t *day);

#endif
