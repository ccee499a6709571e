/* daemon/hall/calendar.c: date arithmetic for the hall's calendar.
 *
 * Civil dates use the proleptic Gregorian calendar (Howard Hinnant's
 * days-from-civil algorithm, exact for every date we meet). Holidays and
 * extra working days are sorted arrays searched by bisection. */
#include "daemon/hall/calendar.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int32_t hall_day_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int32_t)doe - 719468;
}

void hall_civil_from_day(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)yoe + era * 400 + (*m <= 2);
}

int hall_days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[(m - 1) % 12];
}

int hall_weekday(int32_t day)
{
    int w = (int)((day + 4) % 7); /* 1970-01-01 was a Thursday */
    return w < 0 ? w + 7 : w;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int32_t hall_local_day(const hall_calendar *cal, int64_t ms)
{
    return (int32_t)floor_div(ms + cal->utc_offset_ms, HALL_DAY_MS);
}

int hall_local_minute(const hall_calendar *cal, int64_t ms)
{
    int64_t local = ms + cal->utc_offset_ms;
    return (int)((local - floor_div(local, HALL_DAY_MS) * HALL_DAY_MS) / 60000);
}

int64_t hall_local_ms(const hall_calendar *cal, int32_t day, int minute)
{
    return (int64_t)day * HALL_DAY_MS + (int64_t)minute * 60000 - cal->utc_offset_ms;
}

static bool in_sorted(const int32_t *v, int n, int32_t x)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

bool hall_is_working_day(const hall_calendar *cal, int32_t day)
{
    if (in_sorted(cal->extra_days, cal->n_extra_days, day))
        return true;
    if (in_sorted(cal->holidays, cal->n_holidays, day))
        return false;
    return (cal->working_weekdays >> hall_weekday(day)) & 1;
}

int32_t hall_next_working_day(const hall_calendar *cal, int32_t day)
{
    /* A config with no working weekday and no extra day would loop: cap
     * the search at ten years and return the day after. */
    for (int32_t d = day + 1; d < day + 3660; d++)
        if (hall_is_working_day(cal, d))
            return d;
    return day + 1;
}

int32_t hall_business_day(const hall_calendar *cal, int close_min, int64_t ms)
{
    int32_t day = hall_local_day(cal, ms);
    if (hall_is_working_day(cal, day) && hall_local_minute(cal, ms) < close_min)
        return day;
    return hall_next_working_day(cal, day);
}

int32_t hall_add_working_days(const hall_calendar *cal, int32_t day, int n)
{
    for (int i = 0; i < n; i++)
        day = hall_next_working_day(cal, day);
    return day;
}

int32_t hall_deadline_day(const hall_calendar *cal, int64_t ms, int days)
{
    return hall_add_working_days(cal, hall_local_day(cal, ms), days);
}

int hall_working_days_between(const hall_calendar *cal, int32_t from, int32_t to)
{
    int n = 0;
    for (int32_t d = from; d < to; d++)
        n += hall_is_working_day(cal, d);
    return n;
}

void hall_day_format(int32_t day, char out[11])
{
    int y, m, d;
    hall_civil_from_day(day, &y, &m, &d);
    snprintf(out, 11, "%04d-%02d-%02d", y % 10000, m, d);
}

/* Writes v as exactly n decimal digits (0 <= v < 10^n). */
static void put_digits(char *p, int n, int v)
{
    for (int k = n - 1; k >= 0; k--, v /= 10)
        p[k] = (char)('0' + v % 10);
}

void hall_day_compact(int32_t day, char out[9])
{
    int y, m, d;
    hall_civil_from_day(day, &y, &m, &d);
    /* By hand rather than snprintf: every ticket and case number is made
     * here (4 % of ticket.take's instructions went to the formatting). */
    put_digits(out, 4, y < 0 ? 0 : y % 10000);
    put_digits(out + 4, 2, m);
    put_digits(out + 6, 2, d);
    out[8] = 0;
}

int hall_day_parse(const char *s, size_t n, int32_t *day)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (size_t i = 0; i < n; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return -1;
    /* s is not NUL-terminated (it points into a request): no atoi. */
    int y = 0, m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    for (int i = 0; i < 4; i++)
        y = y * 10 + (s[i] - '0');
    if (m < 1 || m > 12 || d < 1 || d > hall_days_in_month(y, m))
        return -1;
    *day = hall_day_from_civil(y, m, d);
    return 0;
}
