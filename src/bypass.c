/*
 * bypass.c — parsing bypass rules and matching frames against them.
 *
 * Matching is a walk of at most BYPASS_MAX_RULES small structs, done only when
 * rules exist; the engine calls it before any table lookup.
 */
#include "colo/bypass.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_port(const char *v, uint16_t *port)
{
    char *end;
    errno = 0;
    unsigned long p = strtoul(v, &end, 10);
    if (!isdigit((unsigned char)*v) || *end || errno || p == 0 || p > 65535)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

static int parse_proto(const char *v, uint8_t *proto)
{
    static const struct { const char *name; uint8_t number; } names[] = {
        { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(v, names[i].name) == 0)
            return *proto = names[i].number, 0;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!isdigit((unsigned char)*v) || *end || n == 0 || n > 255)
        return -1;
    *proto = (uint8_t)n;
    return 0;
}

static int parse_addr(const char *v, struct bypass_end *e)
{
    char host[64];
    const char *slash = strchr(v, '/');
    size_t n = slash ? (size_t)(slash - v) : strlen(v);
    if (n >= sizeof(host))
        return -1;
    memcpy(host, v, n);
    host[n] = '\0';
    memset(e->addr, 0, sizeof(e->addr));
    if (inet_pton(AF_INET, host, e->addr) == 1)
        e->family = FAMILY_IPV4;
    else if (inet_pton(AF_INET6, host, e->addr) == 1)
        e->family = FAMILY_IPV6;
    else
        return -1;
    unsigned max = e->family == FAMILY_IPV4 ? 32 : 128;
    if (!slash) {
        e->prefix = (uint8_t)max;
        return 0;
    }
    char *end;
    unsigned long len = strtoul(slash + 1, &end, 10);
    if (!isdigit((unsigned char)slash[1]) || *end || len > max)
        return -1;
    e->prefix = (uint8_t)len;
    return 0;
}

static char *trimmed(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    for (char *end = s + strlen(s); end > s && isspace((unsigned char)end[-1]);)
        *--end = '\0';
    return s;
}

static int parse_field(struct bypass_rule *rule, char *field, char *err, size_t errlen)
{
    field = trimmed(field);
    char *eq = strchr(field, '=');
    if (!eq) {
        snprintf(err, errlen, "bypass field '%s' is not KEY=VALUE (keys: proto, guest, guest_port, peer, peer_port)",
                 field);
        return -1;
    }
    *eq = '\0';
    const char *key = trimmed(field), *value = trimmed(eq + 1);
    int bad;
    if (strcmp(key, "proto") == 0)
        bad = parse_proto(value, &rule->proto), rule->proto_set = true;
    else if (strcmp(key, "guest") == 0)
        bad = parse_addr(value, &rule->guest);
    else if (strcmp(key, "peer") == 0)
        bad = parse_addr(value, &rule->peer);
    else if (strcmp(key, "guest_port") == 0)
        bad = parse_port(value, &rule->guest.port);
    else if (strcmp(key, "peer_port") == 0)
        bad = parse_port(value, &rule->peer.port);
    else {
        snprintf(err, errlen, "bypass key '%s' is unknown: use proto, guest, guest_port, peer or peer_port", key);
        return -1;
    }
    if (bad)
        snprintf(err, errlen, "bypass %s='%s' is not valid (proto: tcp, udp, icmp, icmpv6 or 1-255; addresses: "
                 "IPv4 or IPv6 with an optional /LEN; ports: 1-65535)", key, value);
    return bad;
}

static int parse_rule(struct bypass_rule *rule, const char *text, char *err, size_t errlen)
{
    memset(rule, 0, sizeof(*rule));
    snprintf(rule->text, sizeof(rule->text), "%s", text);
    char buf[256];
    if (strlen(text) >= sizeof(buf) || !*text) {
        snprintf(err, errlen, "bypass rule '%.64s' is empty or too long", text);
        return -1;
    }
    strcpy(buf, text);
    char *save = NULL;
    for (char *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save))
        if (parse_field(rule, f, err, errlen) != 0)
            return -1;
    return 0;
}

int bypass_rules_add(struct bypass_rules *r, const char *text, char *err, size_t errlen)
{
    char buf[1024];
    if (strlen(text) >= sizeof(buf)) {
        snprintf(err, errlen, "bypass rules are longer than %zu bytes", sizeof(buf) - 1);
        return -1;
    }
    strcpy(buf, text);
    char *save = NULL;
    for (char *one = strtok_r(buf, ";", &save); one; one = strtok_r(NULL, ";", &save)) {
        one = trimmed(one);
        if (r->count == BYPASS_MAX_RULES) {
            snprintf(err, errlen, "more than %d bypass rules; merge some with address prefixes", BYPASS_MAX_RULES);
            return -1;
        }
        if (parse_rule(&r->rule[r->count], one, err, errlen) != 0)
            return -1;
        r->count++;
    }
    return 0;
}

static bool prefix_matches(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    return !rest || ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static bool end_matches(const struct bypass_end *e, uint8_t family, const uint8_t *addr, uint16_t port)
{
    if (e->port && e->port != port)
        return false;
    return !e->family || (e->family == family && prefix_matches(e->addr, addr, e->prefix));
}

int bypass_match(const struct bypass_rules *r, const struct pkt_view *v)
{
    const struct flow_key *k = &v->key;
    int guest = v->dir_swapped ? 1 : 0, peer = 1 - guest;
    for (unsigned i = 0; i < r->count; i++) {
        const struct bypass_rule *rule = &r->rule[i];
        if (rule->proto_set && rule->proto != k->proto)
            continue;
        if (end_matches(&rule->guest, k->family, k->addr[guest], k->port[guest]) &&
            end_matches(&rule->peer, k->family, k->addr[peer], k->port[peer]))
            return (int)i;
    }
    return -1;
}
