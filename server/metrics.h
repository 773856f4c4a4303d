/* metrics: GET /metrics in the Prometheus text exposition format (0.0.4):
 * the counter, requests by route and status, connections, and the lock's
 * statistics with its wait and hold times as histograms. */
#ifndef TURNSTILE_METRICS_H
#define TURNSTILE_METRICS_H

#include <stddef.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct server;

/* Writes the exposition; returns its length, or 0 if cap is too small. */
size_t metrics_text(const struct server *srv, char *buf, size_t cap);

#endif
