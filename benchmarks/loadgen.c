/*
 * loadgen.c - the C load generator of the relay transfer benchmark (`relay.py --client c`).
 *
 * Why C: the Python load generator (relay_load.py, RawClient on uvloop) costs about a core by
 * itself on the 2-core benchmark machine, so the server under test starves and batches little
 * per event-loop iteration.  This one costs a few microseconds per request, which is the
 * wrk-class load the relay's bars are stated for.
 *
 * It does exactly what `relay_load.py BASE transfer [--echo]` does with RawClient:
 *   - `--concurrency N` keep-alive HTTP/1.1 connections, each running complete transfers one
 *     after another (create, read1, update1, read2, update2, read3, delete with fresh UUID v4
 *     claims and request ids), or with `--echo` seven POST /echo with the same bodies;
 *   - a warm-up phase (`--warmup` seconds, at most 10*N+50 transfers), then `READY` on stdout,
 *     `GO` on stdin, the measured phase (`--duration` seconds, at most `--max-transfers`; any
 *     line or EOF on stdin ends it early), then `DONE` and one JSON line with the same keys as
 *     the Python version.
 * All in one thread: epoll (edge-triggered), non-blocking sockets, TCP_NODELAY.  Only libc and
 * Linux.  Build: gcc -O2 -o loadgen loadgen.c (relay_common.py does it and caches the binary).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_BYTES 1050 /* a padded tigress frame: ~1.4 KB once base64url encoded */
#define POOL 64          /* body triples to pick from, as in relay_load.py */
#define NOPS 7
#define MAX_HEAD 65536 /* a response head larger than this is not one of the relay's */
#define RETRY_SECONDS 0.01 /* pause after a connection error, as relay_load.py */
#define GRACE_SECONDS 30.0 /* in-flight transfers may run this long after the phase's end */
#define MAX_ERROR_KINDS 64
#define STDIN_TAG UINT64_MAX

static const char *const OPS[NOPS] = {"create", "read1", "update1", "read2",
                                      "update2", "read3", "delete"};

/* -- small helpers ---------------------------------------------------------------------------- */

static void die(const char *message) {
    fprintf(stderr, "loadgen: %s\n", message);
    exit(1);
}

static void *xrealloc(void *pointer, size_t size) {
    void *grown = realloc(pointer, size);
    if (grown == NULL) die("out of memory");
    return grown;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

/* Random bytes come from the kernel in blocks, so a transfer's six UUIDs cost no syscall. */
static unsigned char random_block[4096];
static size_t random_used = sizeof random_block;

static void random_fill(unsigned char *out, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t got = getrandom(out + done, size - done, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            die("getrandom failed");
        }
        done += (size_t)got;
    }
}

static const unsigned char *random_bytes(size_t size) {
    if (random_used + size > sizeof random_block) {
        random_fill(random_block, sizeof random_block);
        random_used = 0;
    }
    const unsigned char *out = random_block + random_used;
    random_used += size;
    return out;
}

/* A UUID v4 in its 36-character text form (lower-case hex, as Python's str(uuid4())). */
static void new_uuid(char out[37]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    memcpy(b, random_bytes(16), 16);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}

static const char *errno_name(int code) {
    switch (code) {
        case ECONNRESET: return "ECONNRESET";
        case ECONNREFUSED: return "ECONNREFUSED";
        case ECONNABORTED: return "ECONNABORTED";
        case EPIPE: return "EPIPE";
        case ETIMEDOUT: return "ETIMEDOUT";
        case EHOSTUNREACH: return "EHOSTUNREACH";
        case ENETUNREACH: return "ENETUNREACH";
        case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
        case EMFILE: return "EMFILE";
        case ENFILE: return "ENFILE";
        case ENOBUFS: return "ENOBUFS";
        default: return "OSError";
    }
}

/* -- request bodies --------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} Bytes;

static Bytes create_bodies[POOL];
static Bytes update_bodies[POOL][2];
static const Bytes EMPTY_JSON = {"{}", 2};

static void frame_data(char *out) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[FRAME_BYTES];
    random_fill(raw, sizeof raw);
    char *p = out;
    /* FRAME_BYTES is a multiple of 3: no padding, as Python's urlsafe_b64encode().rstrip("="). */
    for (size_t i = 0; i < FRAME_BYTES; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *p++ = alphabet[v >> 18 & 63];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = alphabet[v >> 6 & 63];
        *p++ = alphabet[v & 63];
    }
    *p = '\0';
}

static Bytes format_body(const char *format, const char *data) {
    int size = snprintf(NULL, 0, format, data);
    Bytes body = {xrealloc(NULL, (size_t)size + 1), (size_t)size};
    snprintf(body.data, (size_t)size + 1, format, data);
    return body;
}

/* Byte for byte what json.dumps() gives for create_body() and update_body() in relay_load.py. */
static void make_bodies(void) {
    _Static_assert(FRAME_BYTES % 3 == 0, "frames must encode without padding");
    char data[FRAME_BYTES / 3 * 4 + 1];
    for (int i = 0; i < POOL; i++) {
        frame_data(data);
        create_bodies[i] = format_body(
            "{\"payload\": {\"type\": \"tigress-noise-v1\", \"data\": \"%s\"}, "
            "\"displayInformation\": {\"title\": \"Car key from Alex\", \"description\": "
            "\"Digital key for the blue sedan, valid until Sunday evening.\", \"imageURL\": "
            "\"https://relay.example/preview/car-key.png\"}, "
            "\"mailboxConfiguration\": {\"accessRights\": \"RWD\"}}",
            data);
        for (int j = 0; j < 2; j++) {
            frame_data(data);
            update_bodies[i][j] =
                format_body("{\"payload\": {\"type\": \"tigress-noise-v1\", \"data\": \"%s\"}}", data);
        }
    }
}

/* -- results ---------------------------------------------------------------------------------- */

typedef struct {
    double *values;
    size_t count, capacity;
} Samples;

static void samples_add(Samples *s, double value) {
    if (s->count == s->capacity) {
        s->capacity = s->capacity ? 2 * s->capacity : 4096;
        s->values = xrealloc(s->values, s->capacity * sizeof *s->values);
    }
    s->values[s->count++] = value;
}

typedef struct {
    char name[64];
    long count;
} ErrorKind;

typedef struct {
    long transfers;
    Samples transfer_latencies;
    Samples op_latencies[NOPS];
    ErrorKind errors[MAX_ERROR_KINDS];
    int error_kinds;
} Tally;

static void tally_error(Tally *tally, const char *op, const char *what) {
    char name[64];
    snprintf(name, sizeof name, "%s:%s", op, what);
    for (int i = 0; i < tally->error_kinds; i++) {
        if (strcmp(tally->errors[i].name, name) == 0) {
            tally->errors[i].count++;
            return;
        }
    }
    if (tally->error_kinds == MAX_ERROR_KINDS) {
        /* So many kinds means something else is wrong: the last slot sums the rest. */
        ErrorKind *rest = &tally->errors[MAX_ERROR_KINDS - 1];
        snprintf(rest->name, sizeof rest->name, "other");
        rest->count++;
        return;
    }
    ErrorKind *kind = &tally->errors[tally->error_kinds++];
    memcpy(kind->name, name, sizeof name);
    kind->count = 1;
}

static void tally_free(Tally *tally) {
    free(tally->transfer_latencies.values);
    for (int i = 0; i < NOPS; i++) free(tally->op_latencies[i].values);
    memset(tally, 0, sizeof *tally);
}

/* -- connections ------------------------------------------------------------------------------ */

typedef enum { IDLE, SLEEPING, CONNECTING, WRITING, READING, FINISHED } State;

typedef struct {
    int fd;
    uint32_t generation; /* tells a stale epoll event of a closed socket from a live one */
    State state;
    int op;
    int pool_index;
    double op_start, transfer_start, wake_at;
    char sender[37], receiver[37];
    char path[192];
    char *out;
    size_t out_len, out_sent, out_capacity;
    char *in;
    size_t in_len, in_capacity, head_len, body_len;
    bool close_after; /* the answer said `connection: close` */
} Conn;

typedef struct {
    double deadline, hard_deadline, last;
    long budget;
    bool stop;
    Tally *tally;
} Phase;

static struct {
    struct sockaddr_storage address;
    socklen_t address_len;
    char host_header[300];
    bool echo;
    int concurrency;
    double warmup, duration;
    long max_transfers;
    int epoll_fd;
} config;

static Conn *conns;
static Phase phase;
static int active;   /* connections not FINISHED in this phase */
static int sleeping; /* connections SLEEPING: only then are the timers scanned */

static void conn_close(Conn *c) {
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set: no other descriptor refers to the socket */
        c->fd = -1;
        c->generation++;
    }
}

static void next_transfer(Conn *c);
static void start_op(Conn *c);
static void try_write(Conn *c, bool from_event);
static void try_read(Conn *c, bool drain);

/* A connection-level failure: count it by op, drop the socket, retry after a pause. */
static void fail(Conn *c, const char *what) {
    tally_error(phase.tally, OPS[c->op], what);
    conn_close(c);
    c->state = SLEEPING;
    c->wake_at = now() + RETRY_SECONDS;
    sleeping++;
}

static void finish(Conn *c) {
    if (c->state == SLEEPING) sleeping--;
    conn_close(c);
    c->state = FINISHED;
    active--;
}

static void next_transfer(Conn *c) {
    if (c->state == SLEEPING) {
        sleeping--;
        c->state = IDLE;
    }
    if (now() >= phase.deadline || phase.budget <= 0 || phase.stop) {
        finish(c);
        return;
    }
    phase.budget--;
    new_uuid(c->sender);
    new_uuid(c->receiver);
    c->pool_index = random_bytes(1)[0] % POOL;
    c->op = 0;
    c->transfer_start = now();
    start_op(c);
}

static void out_append(Conn *c, const char *data, size_t len) {
    if (c->out_len + len > c->out_capacity) {
        c->out_capacity = 2 * (c->out_len + len);
        c->out = xrealloc(c->out, c->out_capacity);
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void out_str(Conn *c, const char *text) { out_append(c, text, strlen(text)); }

/* The request of op `c->op`, with the headers RawClient sends, in the same order. */
static void build_request(Conn *c) {
    const Bytes *body = NULL;
    const char *method = "POST", *path = c->path, *claim = NULL;
    bool json = false, request_id = false;
    if (config.echo) {
        const Bytes *bodies[NOPS] = {&create_bodies[c->pool_index],
                                     &EMPTY_JSON,
                                     &update_bodies[c->pool_index][0],
                                     &EMPTY_JSON,
                                     &update_bodies[c->pool_index][1],
                                     &EMPTY_JSON,
                                     &EMPTY_JSON};
        path = "/echo";
        json = true;
        body = bodies[c->op];
    } else {
        switch (c->op) {
            case 0: /* create */
                path = "/v1/m", claim = c->sender, json = request_id = true;
                body = &create_bodies[c->pool_index];
                break;
            case 1: /* read1: binds the recipient */
            case 5: /* read3 */
                claim = c->receiver;
                break;
            case 2: /* update1 */
                method = "PUT", claim = c->receiver, json = request_id = true;
                body = &update_bodies[c->pool_index][0];
                break;
            case 3: /* read2 */
                claim = c->sender;
                break;
            case 4: /* update2 */
                method = "PUT", claim = c->sender, json = request_id = true;
                body = &update_bodies[c->pool_index][1];
                break;
            default: /* delete */
                method = "DELETE", claim = c->receiver, request_id = true;
                break;
        }
    }
    c->out_len = c->out_sent = 0;
    out_str(c, method);
    out_str(c, " ");
    out_str(c, path);
    out_str(c, " HTTP/1.1\r\nhost: ");
    out_str(c, config.host_header);
    if (json) out_str(c, "\r\ncontent-type: application/json");
    if (claim != NULL) {
        out_str(c, "\r\nmailbox-device-claim: ");
        out_append(c, claim, 36);
    }
    if (request_id) {
        char id[37];
        new_uuid(id);
        out_str(c, "\r\nmailbox-request-id: ");
        out_append(c, id, 36);
    }
    char length[48];
    int n = snprintf(length, sizeof length, "\r\ncontent-length: %zu\r\n\r\n",
                     body != NULL ? body->len : 0);
    out_append(c, length, (size_t)n);
    if (body != NULL) out_append(c, body->data, body->len);
}

static void conn_connect(Conn *c) {
    int fd = socket(config.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(c, errno_name(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    /* Edge-triggered for both directions: registered once, never modified. */
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                .data.u64 = (uint64_t)c->generation << 32 | (uint64_t)(c - conns)};
    if (epoll_ctl(config.epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl failed");
    if (connect(fd, (struct sockaddr *)&config.address, config.address_len) == 0) {
        try_write(c, false);
    } else if (errno == EINPROGRESS || errno == EINTR) {
        c->state = CONNECTING;
    } else {
        fail(c, errno_name(errno));
    }
}

static void start_op(Conn *c) {
    c->op_start = now();
    build_request(c);
    if (c->fd < 0) {
        conn_connect(c);
    } else {
        try_write(c, false);
    }
}

static void try_write(Conn *c, bool from_event) {
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (n >= 0) {
            c->out_sent += (size_t)n;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->state = WRITING; /* the next EPOLLOUT edge resumes */
            return;
        } else {
            fail(c, errno_name(errno));
            return;
        }
    }
    c->state = READING;
    c->in_len = c->head_len = c->body_len = 0;
    c->close_after = false;
    /* After a write that had to wait, the answer's EPOLLIN edge may already have been consumed
       while we were still WRITING: look once instead of waiting for an edge that will not come. */
    if (from_event) try_read(c, true);
}

static bool header_is(const char *line, size_t len, const char *name) {
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

static bool value_has(const char *value, size_t len, const char *token) {
    size_t n = strlen(token);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(value + i, token, n) == 0) return true;
    return false;
}

/* The value of the last `"key":` in a compact JSON body, or NULL: the relay's top-level "seq"
   is the last member of a read's answer, after the base64url payload (which cannot hold it). */
static const char *json_value(const char *body, size_t len, const char *key) {
    size_t n = strlen(key);
    const char *found = NULL;
    /* From the end: "seq" is found within a few bytes instead of after the ~1.4 KB payload. */
    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;) {
        if (body[i] == '"' && memcmp(body + i, key, n) == 0) {
            found = body + i + n;
            break;
        }
    }
    if (found == NULL) return NULL;
    while (found < body + len && (*found == ' ' || *found == ':')) found++;
    return found < body + len ? found : NULL;
}

/* Reacts to a complete answer: checks it, records the op, moves the transfer on. */
static void on_response(Conn *c, int status, const char *body, size_t len) {
    double end = now();
    const char *op = OPS[c->op];
    if (c->close_after) conn_close(c);
    if (status != 200) {
        char code[16];
        snprintf(code, sizeof code, "%d", status);
        tally_error(phase.tally, op, code);
        next_transfer(c); /* like RawClient: the answer was read, the connection is still good */
        return;
    }
    samples_add(&phase.tally->op_latencies[c->op], end - c->op_start);
    if (!config.echo) {
        if (c->op == 0) {
            /* The mailbox id is what follows the last '/' of the urlLink. */
            const char *link = json_value(body, len, "\"urlLink\"");
            const char *close_quote = NULL, *slash = NULL;
            if (link != NULL && *link == '"')
                close_quote = memchr(link + 1, '"', (size_t)(body + len - link - 1));
            for (const char *p = link; close_quote != NULL && p < close_quote; p++)
                if (*p == '/') slash = p;
            size_t id_len = slash ? (size_t)(close_quote - slash - 1) : 0;
            if (id_len == 0 || id_len + 7 > sizeof c->path) {
                tally_error(phase.tally, op, "no-urlLink");
                next_transfer(c);
                return;
            }
            memcpy(c->path, "/v1/m/", 6);
            memcpy(c->path + 6, slash + 1, id_len);
            c->path[6 + id_len] = '\0';
        } else if (c->op == 1 || c->op == 3 || c->op == 5) {
            long want = (c->op + 1) / 2;
            const char *seq = json_value(body, len, "\"seq\"");
            long got = seq ? strtol(seq, NULL, 10) : -1;
            if (got != want) {
                char name[16], value[24];
                snprintf(name, sizeof name, "%s-seq", op);
                snprintf(value, sizeof value, "%ld", got);
                tally_error(phase.tally, name, value);
                next_transfer(c);
                return;
            }
        }
    }
    if (++c->op < NOPS) {
        start_op(c);
        return;
    }
    phase.tally->transfers++;
    samples_add(&phase.tally->transfer_latencies, end - c->transfer_start);
    phase.last = end;
    next_transfer(c);
}

/* Parses what has arrived; returns true once the answer is complete and handled. */
static bool parse(Conn *c) {
    if (c->head_len == 0) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (end == NULL) {
            if (c->in_len <= MAX_HEAD) return false;
            fail(c, "head-too-large");
            return true;
        }
        c->head_len = (size_t)(end - c->in) + 4;
        const char *s = c->in; /* "HTTP/1.1 200 OK\r\n" */
        if (c->head_len < 16 || memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ' ||
            s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
            s[11] > '9') {
            fail(c, "bad-status-line");
            return true;
        }
        const char *line = (const char *)memchr(c->in, '\n', c->head_len) + 1;
        const char *head_end = c->in + c->head_len - 2;
        while (line < head_end) {
            const char *eol = memchr(line, '\r', (size_t)(head_end - line));
            if (eol == NULL) {
                fail(c, "bad-header");
                return true;
            }
            size_t len = (size_t)(eol - line);
            const char *colon = memchr(line, ':', len);
            const char *value = colon ? colon + 1 : eol;
            size_t value_len = (size_t)(eol - value);
            if (header_is(line, len, "content-length")) {
                char *after;
                while (*value == ' ' || *value == '\t') value++;
                unsigned long long n = strtoull(value, &after, 10);
                if (after == value || n > (1u << 30)) {
                    fail(c, "bad-content-length");
                    return true;
                }
                c->body_len = (size_t)n;
            } else if (header_is(line, len, "transfer-encoding")) {
                /* The relay answers these routes with Content-Length; chunked is not read here. */
                fail(c, "chunked-response-not-supported");
                return true;
            } else if (header_is(line, len, "connection") && value_has(value, value_len, "close")) {
                c->close_after = true;
            }
            line = eol + 2;
        }
        /* No Content-Length: an empty body, as RawClient reads it (extra bytes are caught). */
        if (c->head_len + c->body_len > c->in_capacity) {
            c->in_capacity = c->head_len + c->body_len;
            c->in = xrealloc(c->in, c->in_capacity);
        }
    }
    size_t total = c->head_len + c->body_len;
    if (c->in_len < total) return false;
    if (c->in_len > total) {
        /* We never pipeline: bytes past the answer mean the framing went wrong. */
        fail(c, "extra-bytes");
        return true;
    }
    int status = (c->in[9] - '0') * 100 + (c->in[10] - '0') * 10 + (c->in[11] - '0');
    on_response(c, status, c->in + c->head_len, c->body_len);
    return true;
}

/* Reads what has arrived.  `drain`: read until EAGAIN or EOF even after a short read - needed
   when the peer has closed, as the EOF raises no edge of its own once this event is taken. */
static void try_read(Conn *c, bool drain) {
    for (;;) {
        if (c->in_len == c->in_capacity) {
            c->in_capacity = c->in_capacity ? 2 * c->in_capacity : 16384;
            c->in = xrealloc(c->in, c->in_capacity);
        }
        size_t room = c->in_capacity - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (parse(c)) return;
            /* A short read emptied the socket: the rest (uvicorn writes head and body apart)
               raises a new edge when it arrives, so a recv() that would say EAGAIN is saved. */
            if ((size_t)n < room && !drain) return;
        } else if (n == 0) {
            fail(c, "closed-by-server");
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            fail(c, errno_name(errno));
            return;
        }
    }
}

static void on_event(Conn *c, uint32_t events) {
    if (c->state == CONNECTING && events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        int error = 0;
        socklen_t len = sizeof error;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error != 0) {
            fail(c, errno_name(error));
            return;
        }
        try_write(c, true);
    } else if (c->state == WRITING && events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        try_write(c, true);
    } else if (c->state == READING && events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        try_read(c, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
    }
    /* Anything else is an edge for a state we left already (say EPOLLOUT after a send). */
}

/* -- phases ----------------------------------------------------------------------------------- */

static void on_stdin(void) {
    char buffer[256];
    ssize_t n;
    do n = read(STDIN_FILENO, buffer, sizeof buffer);
    while (n < 0 && errno == EINTR);
    /* A line (or EOF) after GO ends the phase: relay.py stops the load when what it watches is
       done.  In-flight transfers still finish, as in relay_load.py. */
    phase.stop = true;
    epoll_ctl(config.epoll_fd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
}

static int wait_timeout_ms(double t) {
    double until = phase.hard_deadline;
    for (int i = 0; sleeping > 0 && i < config.concurrency; i++)
        if (conns[i].state == SLEEPING && conns[i].wake_at < until) until = conns[i].wake_at;
    double ms = (until - t) * 1000.0;
    return ms <= 0 ? 0 : (int)ms + 1;
}

/* One phase: every connection runs transfers until the time or the count runs out; returns the
   seconds from the start to the end of the last completed transfer. */
static double run_phase(Tally *tally, double seconds, long cap, bool watch_stdin) {
    double begin = now();
    phase = (Phase){.deadline = begin + seconds,
                    .hard_deadline = begin + seconds + GRACE_SECONDS,
                    .last = begin,
                    .budget = cap,
                    .stop = false,
                    .tally = tally};
    if (watch_stdin) {
        struct epoll_event event = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
        /* A regular file or /dev/null cannot be watched (EPERM): then only time and count stop. */
        epoll_ctl(config.epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &event);
    }
    active = config.concurrency;
    sleeping = 0;
    for (int i = 0; i < config.concurrency; i++) {
        conns[i].state = IDLE;
        next_transfer(&conns[i]);
    }
    struct epoll_event events[256];
    while (active > 0) {
        int n = epoll_wait(config.epoll_fd, events, 256, wait_timeout_ms(now()));
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait failed");
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == STDIN_TAG) {
                on_stdin();
                continue;
            }
            Conn *c = &conns[(uint32_t)tag];
            if ((uint32_t)(tag >> 32) == c->generation && c->fd >= 0) on_event(c, events[i].events);
        }
        double t = now();
        for (int i = 0; sleeping > 0 && i < config.concurrency; i++) {
            Conn *c = &conns[i];
            if (c->state == SLEEPING && c->wake_at <= t) next_transfer(c);
        }
        if (t >= phase.hard_deadline) {
            for (int i = 0; i < config.concurrency; i++) {
                Conn *c = &conns[i];
                if (c->state == FINISHED) continue;
                if (c->state != SLEEPING) tally_error(tally, OPS[c->op], "timeout");
                finish(c);
            }
        }
    }
    if (watch_stdin) epoll_ctl(config.epoll_fd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
    double end = phase.last > begin + 1e-9 ? phase.last : begin + 1e-9;
    return end - begin;
}

static void await_go(void) {
    fputs("READY\n", stdout);
    fflush(stdout);
    char line[64];
    size_t len = 0;
    /* Byte by byte: whatever follows GO is the early-stop signal and must stay unread. */
    for (;;) {
        char ch;
        ssize_t n = read(STDIN_FILENO, &ch, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || ch == '\n') break;
        if (len < sizeof line - 1) line[len++] = ch;
    }
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ')) len--;
    line[len] = '\0';
    if (strcmp(line, "GO") != 0) die("expected GO");
}

static void print_samples(const Samples *s) {
    putchar('[');
    for (size_t i = 0; i < s->count; i++) printf(i ? ", %.9g" : "%.9g", s->values[i]);
    putchar(']');
}

/* The JSON document of relay_load.py's run_transfers, keys in the same order. */
static void print_result(const Tally *tally, double elapsed, double client_cpu) {
    printf("{\"mode\": \"%s\", \"client\": \"c\", \"concurrency\": %d, \"transfers\": %ld, "
           "\"elapsed_seconds\": %.9g, \"client_cpu_seconds\": %.9g, \"transfer_latencies\": ",
           config.echo ? "echo" : "transfer", config.concurrency, tally->transfers, elapsed,
           client_cpu);
    print_samples(&tally->transfer_latencies);
    fputs(", \"op_latencies\": {", stdout);
    for (int i = 0; i < NOPS; i++) {
        printf(i ? ", \"%s\": " : "\"%s\": ", OPS[i]);
        print_samples(&tally->op_latencies[i]);
    }
    fputs("}, \"errors\": {", stdout);
    for (int i = 0; i < tally->error_kinds; i++)
        printf(i ? ", \"%s\": %ld" : "\"%s\": %ld", tally->errors[i].name, tally->errors[i].count);
    fputs("}}\n", stdout);
    fflush(stdout);
}

/* -- command line ----------------------------------------------------------------------------- */

static const char USAGE[] =
    "usage: loadgen BASE_URL transfer [--echo] [--concurrency N] [--warmup S] [--duration S]\n"
    "               [--max-transfers N] [--client c]\n"
    "BASE_URL is http://HOST:PORT; see relay_load.py for the protocol on stdin and stdout.";

static double number(const char *text, double low, double high) {
    char *end;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !(value >= low && value <= high)) die(USAGE);
    return value;
}

static void parse_base(const char *base) {
    if (strncmp(base, "http://", 7) != 0) die("BASE_URL must start with http://");
    const char *host = base + 7;
    const char *colon = strrchr(host, ':');
    if (colon == NULL || colon == host) die("BASE_URL must be http://HOST:PORT");
    char name[256], port[16];
    size_t name_len = (size_t)(colon - host), port_len = strcspn(colon + 1, "/");
    if (name_len >= sizeof name || port_len == 0 || port_len >= sizeof port) die(USAGE);
    memcpy(name, host, name_len);
    name[name_len] = '\0';
    memcpy(port, colon + 1, port_len);
    port[port_len] = '\0';
    snprintf(config.host_header, sizeof config.host_header, "%s:%s", name, port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found;
    if (getaddrinfo(name, port, &hints, &found) != 0) die("cannot resolve BASE_URL's host");
    memcpy(&config.address, found->ai_addr, found->ai_addrlen);
    config.address_len = found->ai_addrlen;
    freeaddrinfo(found);
}

static void parse_args(int argc, char **argv) {
    if (argc < 3) die(USAGE);
    if (strcmp(argv[2], "transfer") != 0)
        die("only the transfer mode is in C; notify and idle run in relay_load.py");
    parse_base(argv[1]);
    config.concurrency = 64;
    config.warmup = 2.0;
    config.duration = 10.0;
    config.max_transfers = 1000000;
    for (int i = 3; i < argc; i++) {
        const char *option = argv[i];
        if (strcmp(option, "--echo") == 0) {
            config.echo = true;
            continue;
        }
        if (i + 1 >= argc) die(USAGE);
        const char *value = argv[++i];
        if (strcmp(option, "--concurrency") == 0)
            config.concurrency = (int)number(value, 1, 10000);
        else if (strcmp(option, "--warmup") == 0)
            config.warmup = number(value, 0, 86400);
        else if (strcmp(option, "--duration") == 0)
            config.duration = number(value, 0, 86400);
        else if (strcmp(option, "--max-transfers") == 0)
            config.max_transfers = (long)number(value, 0, 1e12);
        else if (strcmp(option, "--client") == 0) {
            if (strcmp(value, "c") != 0) die("this is the `c` client; run relay_load.py for others");
        } else
            die(USAGE);
    }
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    make_bodies();
    config.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (config.epoll_fd < 0) die("epoll_create1 failed");
    conns = calloc((size_t)config.concurrency, sizeof *conns);
    if (conns == NULL) die("out of memory");
    for (int i = 0; i < config.concurrency; i++) conns[i].fd = -1;

    Tally warmup = {0};
    run_phase(&warmup, config.warmup, 10L * config.concurrency + 50, false);
    if (warmup.error_kinds > 0) {
        fputs("loadgen: warm-up errors:", stderr);
        for (int i = 0; i < warmup.error_kinds; i++)
            fprintf(stderr, " %s=%ld", warmup.errors[i].name, warmup.errors[i].count);
        fputc('\n', stderr);
    }
    tally_free(&warmup);

    await_go();
    Tally tally = {0};
    double cpu_before = cpu_seconds();
    double elapsed = run_phase(&tally, config.duration, config.max_transfers, true);
    double client_cpu = cpu_seconds() - cpu_before;
    fputs("DONE\n", stdout);
    fflush(stdout);
    print_result(&tally, elapsed, client_cpu);
    return 0;
}
