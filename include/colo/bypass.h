/*
 * bypass.h — traffic the operator knows differs and does not matter.
 *
 * A rule is a comma-separated list of fields, every one of which must match
 * (an absent field matches anything):
 *   proto=tcp|udp|icmp|icmpv6|N   guest=ADDR[/LEN]   guest_port=N
 *   peer=ADDR[/LEN]               peer_port=N
 * "guest" is the VM's end of the flow (the sender of what is compared), "peer"
 * the other end; addresses are IPv4 or IPv6. Several rules may be given at once,
 * separated by ';'. Frames that match a rule are not compared: the PVM's leave
 * at once (released as "bypassed"), the SVM's are discarded; each rule counts
 * its frames. Rules see whole flows, so a flow's frames are all bypassed or
 * none are, and order within a flow is kept.
 */
#ifndef COLO_BYPASS_H
#define COLO_BYPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo/pkt.h"

#define BYPASS_MAX_RULES 32

struct bypass_end {
    uint8_t family;        /* 0: any address */
    uint8_t prefix;        /* bits that must match */
    uint8_t addr[16];
    uint16_t port;         /* 0: any port */
};

struct bypass_rule {
    uint8_t proto;         /* 0: any */
    bool proto_set;
    struct bypass_end guest, peer;
    char text[96];         /* as written, for status */
};

struct bypass_rules {
    unsigned count;
    struct bypass_rule rule[BYPASS_MAX_RULES];
};

/* Adds the rules in text (';'-separated); -1 with a one-line reason naming the bad field. */
int bypass_rules_add(struct bypass_rules *r, const char *text, char *err, size_t errlen);

/* The index of the first rule the frame matches, or -1. */
int bypass_match(const struct bypass_rules *r, const struct pkt_view *v);

#endif
