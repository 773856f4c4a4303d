/* metrics: GET /metrics in the Prometheus text exposition format (0.0.4):
 * every row of stats.h's table that names a metric family. */
#ifndef TURNSTILE_METRICS_H
#define TURNSTILE_METRICS_H

#include <stddef.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct stats_source;

/* Writes the exposition; returns its length, or 0 if cap is too small. */
size_t metrics_text(const struct stats_source *src, char *buf, size_t cap);

#endif
