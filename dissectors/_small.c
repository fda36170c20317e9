/* dissectors._small: the optional compiled walker of small-message runs (docs/performance.md).
 *
 * Why C: query-heavy traffic (C-FIND, worklist polling, MPPS, commitment) is a stream of small
 * segments: dcmtk writes every P-DATA-TF and PDV header as a segment of its own, then a command
 * set, then a small data set. The interpreter's cost per record (read the pcap record, unpack
 * the headers, look the flow up, check the TCP order, call ULStream.take, hand the events over)
 * is about 30k instructions, most of the query-heavy run. This walker does that part, for the
 * records of one connection that follow, in the reader's chunk: the engine's in-order TCP fast
 * path (dicomsniff/analysis/engine.py, Analyzer.consume: the same checks) and the common branches
 * of the upper-layer parser (dissectors/ul/stream.py, ULStream.take: the same checks, the same
 * state changes, the same PdvCommand, PdvData and DataComplete events). It stops before the first
 * record the Python path would treat in any other way (a record of another connection, SYN, FIN,
 * RST, a zero window, an ACK past what the other side delivered, a segment out of order, a PDU
 * other than P-DATA-TF, a collected data set, anything a finding would be raised for); Python
 * goes on from there. A header or command fragment cut across records is kept as the parser
 * keeps it (ULStream._part, _cmd). Per record it is all or nothing: a record
 * whose parse meets anything unusual half way is left whole to Python. The events are handed
 * to the association tracker after the walk (DicomAnalyzer.walked), in the order the records
 * came; handling them changes nothing the walker reads (AssociationTracker.batchable).
 * Without a compiler the package installs without it and Python does everything
 * (dicomsniff/analysis/accel.py); tests drive both and compare (tests/test_small_walk.py, the
 * fuzz target tests/fuzz/small_targets.py).
 *
 * walk(chunk, off, layout, key0, key1, seq0, seq1, ul0, ul1, frame, limit, run_min, classes)
 *   walks at most `limit` records (negative: no limit) from chunk[off], the records of the
 *   connection whose side 0 sends with flow key key0 and side 1 with key1 (12-byte IPv4 keys).
 *   layout: as for dissectors._runs.walk (CaptureReader.walks). seqN: side N's next sequence
 *   number (None: unknown; its payload then stops the walk). ulN: side N's parser state from
 *   ULStream.walk_state() (None: its payload stops the walk; its last two items the header
 *   and the command fragment begun, bytes). frame: the number of the record
 *   before chunk[off]. run_min: a record that leaves its side with more than this many data set
 *   bytes to count ends the walk after it (the bulk walker, dissectors._runs, takes over there).
 *   classes: (PdvCommand, PdvData, DataComplete).
 * Returns (off, records, ts, seq0, seq1, delivered0, delivered1, ul0, ul1, recent0, recent1,
 *   groups, drains, bulk_side): where it stopped, the records consumed, the last one's
 *   timestamp (None if none), each side's next sequence number and payload bytes delivered, each
 *   side's parser state for ULStream.walked (None: unchanged), each side's last 16 payload
 *   records as (memoryview of the frame, index from 0), the events as a list of (side, events)
 *   in record order (consecutive records of one side in one list), the number of records that
 *   made events (the Python path's drains), and the side whose bulk run ends the walk (or -1).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_records.h"

/* ULStream states (dissectors/ul/stream.py) */
#define HEADER 1
#define PDV_HEADER 3
#define PDV_CMD 4
#define PDV_DATA 5

/* -- one side's upper-layer parser: the fields of ULStream the common branches use ---------- */

/* A command fragment cut across records (ULStream._cmd): shared by a side's parser state and
 * the copy a record is parsed with; written only when a record ends inside a fragment (then
 * that record is taken), so a record left to Python never changes what it holds. */
typedef struct {
    char *p;
    Py_ssize_t cap;
} cmdbuf_t;

typedef struct {
    int ok; /* walk_state() gave a state: this side's payload may be parsed */
    int state;
    long long pdu_left, pdv_left, pdu_len;
    int pdv_ctx, pdv_last, ptype, suspect, partial;
    unsigned long long limit; /* pdata_limit or SUSPECT_PDATA */
    long long max_command;
    int collect_all;
    PyObject *collect;  /* collect_contexts (borrowed), NULL when empty */
    unsigned char part[6]; /* ULStream._part: a PDU or PDV item header begun (< 6 bytes) */
    int partlen;
    cmdbuf_t *cmd;      /* ULStream._cmd, cmdlen bytes of it */
    Py_ssize_t cmdlen;
    long long pdus, pdata, bytes_in, data_bytes; /* added by the walk */
    int entered_data;   /* a data PDV began: ULStream.collecting is False */
    int changed;
} ul_t;

static int ul_parse(PyObject *t, ul_t *u, cmdbuf_t *cmd) {
    memset(u, 0, sizeof(*u));
    u->cmd = cmd;
    if (t == Py_None) return 0;
    PyObject *ctxs;
    int last, suspect, partial, all;
    const char *part, *cmdp;
    Py_ssize_t partlen, cmdlen;
    if (!PyArg_ParseTuple(t, "iLLipiLppKLpOy#y#", &u->state, &u->pdu_left, &u->pdv_left,
                          &u->pdv_ctx, &last, &u->ptype, &u->pdu_len, &suspect, &partial,
                          &u->limit, &u->max_command, &all, &ctxs, &part, &partlen, &cmdp,
                          &cmdlen)) return -1;
    if (u->state != HEADER && u->state != PDV_HEADER && u->state != PDV_CMD
            && u->state != PDV_DATA) {
        PyErr_SetString(PyExc_ValueError, "walk_state: a state the walker does not parse");
        return -1;
    }
    if (!PyAnySet_Check(ctxs)) {
        PyErr_SetString(PyExc_TypeError, "walk_state: collect_contexts is a set");
        return -1;
    }
    if (partlen > 5 || (partlen && u->state != HEADER && u->state != PDV_HEADER)
            || (cmdlen && u->state != PDV_CMD) || cmdlen > (1 << 24) || u->pdu_left < 0
            || u->pdv_left < 0 || u->pdu_len < 0) {
        return 0; /* no parser leaves these (lengths are checked before they are taken): a
                   * state the walker does not parse, left to Python */
    }
    memcpy(u->part, part, (size_t)partlen);
    u->partlen = (int)partlen;
    if (cmdlen) {
        cmd->p = PyMem_Malloc((size_t)cmdlen);
        if (cmd->p == NULL) { PyErr_NoMemory(); return -1; }
        cmd->cap = cmdlen;
        memcpy(cmd->p, cmdp, (size_t)cmdlen);
    }
    u->cmdlen = cmdlen;
    u->pdv_last = last;
    u->suspect = suspect;
    u->partial = partial;
    u->collect_all = all;
    u->collect = PySet_GET_SIZE(ctxs) ? ctxs : NULL;
    u->ok = 1;
    return 0;
}

static PyObject *ul_result(const ul_t *u) {
    if (!u->ok || !u->changed) Py_RETURN_NONE;
    return Py_BuildValue("(iLLiNiLNNLLLLNy#y#)", u->state, u->pdu_left, u->pdv_left, u->pdv_ctx,
                         PyBool_FromLong(u->pdv_last), u->ptype, u->pdu_len,
                         PyBool_FromLong(u->suspect), PyBool_FromLong(u->partial), u->pdus,
                         u->pdata, u->bytes_in, u->data_bytes, PyBool_FromLong(u->entered_data),
                         (const char *)u->part, (Py_ssize_t)u->partlen,
                         u->cmdlen ? u->cmd->p : "", u->cmdlen);
}

/* Is a data set on this presentation context copied? (ULStream: collect_data or ctx in
 * collect_contexts; _paused is empty while walking) -1: error. */
static int collected(const ul_t *u, unsigned ctx) {
    if (u->collect_all) return 1;
    if (u->collect == NULL) return 0;
    PyObject *k = PyLong_FromLong((long)ctx);
    if (k == NULL) return -1;
    int r = PySet_Contains(u->collect, k);
    Py_DECREF(k);
    return r;
}

/* What an event needs: its frame and time (made at the record's first event), the classes. */
typedef struct {
    PyObject *frame, *ts;
    Py_ssize_t number;
    uint32_t sec, frac, ifid;
    const layout_t *layout;
    PyObject *cmd_cls, *data_cls, *done_cls;
    PyObject *out; /* the record's events */
} ev_t;

static int emit(ev_t *e, PyObject *cls, unsigned ctx, int flag, PyObject *last) {
    PyObject *args[5];
    if (e->frame == NULL) {
        e->frame = PyLong_FromSsize_t(e->number);
        if (e->frame == NULL) return -1;
        e->ts = timestamp(e->layout, e->sec, e->frac, e->ifid);
        if (e->ts == NULL) return -1;
    }
    PyObject *c = PyLong_FromLong((long)ctx);
    if (c == NULL) return -1;
    args[0] = e->frame;
    args[1] = e->ts;
    args[2] = c;
    args[3] = flag ? Py_True : Py_False;
    args[4] = last;
    PyObject *ev = PyObject_Vectorcall(cls, args, last ? 5 : 4, NULL);
    Py_DECREF(c);
    if (ev == NULL) return -1;
    int r = PyList_Append(e->out, ev);
    Py_DECREF(ev);
    return r;
}

/* The command sets made last, by value: a pending response repeats its predecessor's command
 * set byte for byte, and the same bytes object then costs no copy, and no hash where the
 * assembler looks its decoding up (dissectors/dimse/assembler.py _WHOLE). Bytes are immutable:
 * sharing one changes nothing else. */
#define RECENT_COMMANDS 8
static PyObject *recent_commands[RECENT_COMMANDS];
static int recent_next;

/* A PdvCommand of `head` (bytes kept from earlier records) then `v`. */
static int emit_command(ev_t *e, unsigned ctx, int last, const char *head, Py_ssize_t hn,
                        const unsigned char *v, long long n) {
    Py_ssize_t size = hn + (Py_ssize_t)n;
    PyObject *b = NULL;
    for (int i = 0; i < RECENT_COMMANDS; i++) {
        PyObject *c = recent_commands[i];
        if (c != NULL && PyBytes_GET_SIZE(c) == size
                && (hn == 0 || memcmp(PyBytes_AS_STRING(c), head, (size_t)hn) == 0)
                && memcmp(PyBytes_AS_STRING(c) + hn, v, (size_t)n) == 0) {
            b = Py_NewRef(c);
            break;
        }
    }
    if (b == NULL) {
        b = PyBytes_FromStringAndSize(NULL, size);
        if (b == NULL) return -1;
        if (hn) memcpy(PyBytes_AS_STRING(b), head, (size_t)hn);
        memcpy(PyBytes_AS_STRING(b) + hn, v, (size_t)n);
        if (size <= 1024) { /* command sets are a few hundred bytes; keep no large one */
            Py_XSETREF(recent_commands[recent_next], Py_NewRef(b));
            recent_next = (recent_next + 1) % RECENT_COMMANDS;
        }
    }
    int r = emit(e, e->cmd_cls, ctx, last, b);
    Py_DECREF(b);
    return r;
}

static int emit_data(ev_t *e, unsigned ctx, int last, long long vlen) {
    PyObject *l = PyLong_FromLongLong(vlen);
    if (l == NULL) return -1;
    int r = emit(e, e->data_cls, ctx, last, l);
    Py_DECREF(l);
    return r;
}

/* ULStream._on_pdu_header for a P-DATA-TF that raises no finding and is believed (its length
 * at most the receiver's maximum); 0 for anything else (Python reads it). */
static int pdu_header(ul_t *u, const unsigned char *h) {
    unsigned long long length = be32(h + 2);
    if (h[0] != 4 || length > u->limit || length < 6) return 0;
    u->pdus++;
    u->pdata++;
    u->ptype = 4;
    u->pdu_len = (long long)length;
    u->pdu_left = (long long)length;
    u->suspect = 0;
    u->state = PDV_HEADER;
    return 1;
}

/* ULStream._on_pdv_header without a finding; 0 for anything else, -1 on error. */
static int pdv_header(ul_t *u, const unsigned char *h, ev_t *e) {
    if (u->suspect) return 0; /* (ULStream._lied) */
    long long length = (long long)be32(h);
    unsigned ctx = h[4], mch = h[5];
    if (length < 2 || length + 4 > u->pdu_left) return 0; /* UL-PDV-LENGTH */
    long long vlen = length - 2;
    if (mch > 3 || (vlen & 1) || vlen == 0) return 0; /* findings, or an empty PDV */
    if (mch & 1) {
        if (vlen > u->max_command) return 0; /* UL-COMMAND-SIZE */
    } else {
        int c = collected(u, ctx);
        if (c) return c < 0 ? -1 : 0;
    }
    u->pdu_left -= 6;
    u->pdv_left = vlen;
    u->pdv_ctx = (int)ctx;
    u->pdv_last = (mch & 2) == 2;
    if (mch & 1) {
        u->state = PDV_CMD;
    } else {
        if (emit_data(e, ctx, u->pdv_last, vlen) < 0) return -1;
        u->entered_data = 1;
        u->state = PDV_DATA;
    }
    return 1;
}

/* One record's payload through the parser, as ULStream.take parses it in its common branches.
 * 1: parsed (u updated, events in e->out); 0: not for the walker (u is then garbage: the caller
 * parsed a copy); -1: a Python error. */
static int ul_take(ul_t *u, const unsigned char *b, long long n, ev_t *e) {
    long long pos = 0;
    u->bytes_in += n;
    while (pos < n) {
        int st = u->state;
        if (st == HEADER && u->partlen == 0 && n - pos >= 12 && b[pos] == 4) {
            /* take()'s first branch: a P-DATA-TF header and its first PDV item header */
            const unsigned char *h = b + pos;
            unsigned long long plen = be32(h + 2), ilen = be32(h + 6);
            unsigned ctx = h[10], mch = h[11];
            long long vlen = (long long)ilen - 2;
            if (!(2 < ilen && ilen + 4 <= plen && mch <= 3 && !(vlen & 1)
                  && plen <= u->limit)) return 0;
            if (mch & 1) {
                if (vlen > u->max_command) return 0;
            } else {
                int c = collected(u, ctx);
                if (c) return c < 0 ? -1 : 0;
            }
            u->pdus++;
            u->pdata++;
            u->ptype = 4;
            u->suspect = 0;
            u->pdu_len = (long long)plen;
            long long left = (long long)plen - 6;
            int last = (mch & 2) == 2;
            u->pdv_ctx = (int)ctx;
            u->pdv_last = last;
            pos += 12;
            if (n - pos >= vlen) {
                if (mch & 1) {
                    if (emit_command(e, ctx, last, NULL, 0, b + pos, vlen) < 0) return -1;
                } else {
                    if (emit_data(e, ctx, last, vlen) < 0) return -1;
                    u->data_bytes += vlen;
                    if (last) {
                        if (emit(e, e->done_cls, ctx, u->partial, NULL) < 0) return -1;
                        u->partial = 0;
                    }
                }
                pos += vlen;
                left -= vlen;
                u->pdu_left = left;
                u->pdv_left = 0;
                u->state = left > 0 ? PDV_HEADER : HEADER;
            } else {
                u->pdu_left = left;
                u->pdv_left = vlen;
                if (mch & 1) {
                    u->state = PDV_CMD;
                } else {
                    if (emit_data(e, ctx, last, vlen) < 0) return -1;
                    u->entered_data = 1;
                    u->state = PDV_DATA;
                }
            }
        } else if (st == PDV_DATA) { /* counted: nobody collects it (walk_state's condition) */
            long long take = u->pdv_left;
            if (take > n - pos) take = n - pos;
            u->pdv_left -= take;
            u->pdu_left -= take;
            u->data_bytes += take;
            pos += take;
            if (u->pdv_left == 0) {
                if (u->pdv_last) {
                    if (emit(e, e->done_cls, (unsigned)u->pdv_ctx, u->partial, NULL) < 0)
                        return -1;
                    u->partial = 0;
                }
                u->state = u->pdu_left > 0 ? PDV_HEADER : HEADER;
            }
        } else if (st == PDV_CMD) {
            long long left = u->pdv_left;
            if (u->cmdlen == 0 && n - pos >= left) { /* the whole fragment here: one copy */
                if (emit_command(e, (unsigned)u->pdv_ctx, u->pdv_last, NULL, 0, b + pos, left)
                        < 0) return -1;
                u->pdv_left = 0;
                u->pdu_left -= left;
                pos += left;
                u->state = u->pdu_left > 0 ? PDV_HEADER : HEADER;
                continue;
            }
            long long take = left < n - pos ? left : n - pos;
            if (take == left) { /* its end: what was kept, then this */
                if (emit_command(e, (unsigned)u->pdv_ctx, u->pdv_last, u->cmd->p, u->cmdlen,
                                 b + pos, take) < 0) return -1;
                u->cmdlen = 0;
            } else { /* it goes on past this record: kept (the record ends here) */
                Py_ssize_t need = u->cmdlen + (Py_ssize_t)take;
                if (need > u->cmd->cap) {
                    Py_ssize_t cap = need < 256 ? 256 : need * 2;
                    char *p = PyMem_Realloc(u->cmd->p, (size_t)cap);
                    if (p == NULL) { PyErr_NoMemory(); return -1; }
                    u->cmd->p = p;
                    u->cmd->cap = cap;
                }
                memcpy(u->cmd->p + u->cmdlen, b + pos, (size_t)take);
                u->cmdlen = need;
            }
            u->pdv_left -= take;
            u->pdu_left -= take;
            pos += take;
            if (u->pdv_left == 0) u->state = u->pdu_left > 0 ? PDV_HEADER : HEADER;
        } else if (st == HEADER || st == PDV_HEADER) { /* a 6-byte header, whole or in parts */
            const unsigned char *h;
            unsigned char whole[6];
            if (u->partlen == 0 && n - pos >= 6) {
                h = b + pos;
                pos += 6;
            } else {
                long long take = 6 - u->partlen;
                if (take > n - pos) take = n - pos;
                memcpy(u->part + u->partlen, b + pos, (size_t)take);
                u->partlen += (int)take;
                pos += take;
                if (u->partlen < 6) continue; /* (the record ends here) */
                memcpy(whole, u->part, 6);
                u->partlen = 0;
                h = whole;
            }
            int r = st == HEADER ? pdu_header(u, h) : pdv_header(u, h, e);
            if (r <= 0) return r;
        } else {
            return 0;
        }
    }
    return 1;
}

typedef struct {
    int known;
    uint32_t next;
    unsigned long long delivered;
    Py_ssize_t rstart[RECENT], rend[RECENT], ridx[RECENT];
    int rcount, rnext;
} tcp_t;

static int seq_parse(PyObject *o, tcp_t *t) {
    memset(t, 0, sizeof(*t));
    if (o == Py_None) return 0;
    t->next = (uint32_t)PyLong_AsUnsignedLongMask(o);
    if (PyErr_Occurred()) return -1;
    t->known = 1;
    return 0;
}

static PyObject *recent_list(PyObject *chunk, const tcp_t *t) {
    PyObject *recent = PyList_New(t->rcount);
    if (recent == NULL) return NULL;
    for (int i = 0; i < t->rcount; i++) {
        int j = (t->rnext - t->rcount + i + RECENT) % RECENT;
        PyObject *mv = PySequence_GetSlice(chunk, t->rstart[j], t->rend[j]);
        if (mv == NULL) { Py_DECREF(recent); return NULL; }
        PyObject *item = Py_BuildValue("(Nn)", mv, t->ridx[j]);
        if (item == NULL) { Py_DECREF(recent); return NULL; }
        PyList_SET_ITEM(recent, i, item);
    }
    return recent;
}

static PyObject *walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "walk() takes 13 arguments");
        return NULL;
    }
    PyObject *chunk = args[0], *layout = args[2], *classes = args[12];
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    if (off == -1 && PyErr_Occurred()) return NULL;
    const char *key[2];
    Py_ssize_t kl[2];
    for (int i = 0; i < 2; i++) {
        if (PyBytes_AsStringAndSize(args[3 + i], (char **)&key[i], &kl[i]) < 0) return NULL;
        if (kl[i] != 12) {
            PyErr_SetString(PyExc_ValueError, "IPv4 flow keys are 12 bytes");
            return NULL;
        }
    }
    Py_ssize_t frame = PyLong_AsSsize_t(args[9]);
    if (frame == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t limit;
    if (limit_arg(args[10], &limit) < 0) return NULL;
    long long run_min = PyLong_AsLongLong(args[11]);
    if (run_min == -1 && PyErr_Occurred()) return NULL;
    ev_t E;
    memset(&E, 0, sizeof(E));
    if (!PyTuple_Check(classes) || PyTuple_GET_SIZE(classes) != 3) {
        PyErr_SetString(PyExc_TypeError, "classes: (PdvCommand, PdvData, DataComplete)");
        return NULL;
    }
    E.cmd_cls = PyTuple_GET_ITEM(classes, 0);
    E.data_cls = PyTuple_GET_ITEM(classes, 1);
    E.done_cls = PyTuple_GET_ITEM(classes, 2);
    tcp_t T[2];
    ul_t U[2];
    if (seq_parse(args[5], &T[0]) < 0 || seq_parse(args[6], &T[1]) < 0) return NULL;
    cmdbuf_t C[2] = {{NULL, 0}, {NULL, 0}};
    if (ul_parse(args[7], &U[0], &C[0]) < 0 || ul_parse(args[8], &U[1], &C[1]) < 0) {
        PyMem_Free(C[0].p);
        PyMem_Free(C[1].p);
        return NULL;
    }
    layout_t L;
    Py_buffer view;
    if (records_open(chunk, layout, &L, &view) < 0) {
        PyMem_Free(C[0].p);
        PyMem_Free(C[1].p);
        return NULL;
    }
    E.layout = &L;
    const int big = L.big;
    const unsigned char *base = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;

    PyObject *groups = PyList_New(0), *cur = NULL; /* cur: the last group's list (borrowed) */
    E.out = PyList_New(0);
    if (groups == NULL || E.out == NULL) goto fail;
    int cur_side = -1, bulk_side = -1;
    Py_ssize_t records = 0, drains = 0;
    uint32_t last_sec = 0, last_frac = 0, last_if = 0;
    if (!L.ng && L.linktype != 1) n = 0; /* nothing to walk */

    while (records < limit && off >= 0 && n - off >= (L.ng ? 28 : L.hlen)) {
        const unsigned char *r = base + off;
        uint32_t sec, frac, caplen, olen, ifid = 0;
        Py_ssize_t start, next;
        if (!L.ng) {
            if (big) { sec = be32(r); frac = be32(r + 4); caplen = be32(r + 8); olen = be32(r + 12); }
            else { sec = le32(r); frac = le32(r + 4); caplen = le32(r + 8); olen = le32(r + 12); }
            start = off + L.hlen;
            if ((Py_ssize_t)caplen > L.maxcap || (Py_ssize_t)caplen > n - start) break;
            next = start + caplen;
        } else { /* an enhanced packet block, as the reader's hot loop takes it */
            uint32_t w[7];
            for (int i = 0; i < 7; i++) w[i] = big ? be32(r + 4 * i) : le32(r + 4 * i);
            uint32_t blen = w[1];
            ifid = w[2]; sec = w[3]; frac = w[4]; caplen = w[5]; olen = w[6];
            if (w[0] != 6 || (Py_ssize_t)blen > n - off || (Py_ssize_t)caplen > L.maxcap
                    || (unsigned long long)caplen + 32 > blen || (Py_ssize_t)blen > L.maxblock
                    || (Py_ssize_t)ifid >= L.nif || (blen & 3)) break;
            const unsigned char *t = r + blen - 4;
            if ((big ? be32(t) : le32(t)) != blen || L.lt[ifid] != 1) break;
            start = off + 28;
            next = off + blen;
        }
        /* Analyzer.consume's fast path: Ethernet, IPv4 without options, TCP of this flow */
        if (olen > caplen || caplen < 54) break;
        const unsigned char *p = base + start;
        if (be16(p + 12) != 0x0800 || p[14] != 0x45 || p[23] != 6) break;
        int side;
        if (memcmp(p + 26, key[0], 12) == 0) side = 0;
        else if (memcmp(p + 26, key[1], 12) == 0) side = 1;
        else break;
        uint32_t total = be16(p + 16), frag = be16(p + 20);
        unsigned doff = p[46], flags = p[47];
        if ((frag & 0x3FFF) || (flags & 0x07) || total + 14 > caplen || doff < 0x50) break;
        long long plen = (long long)total - 20 - (long long)(doff >> 4) * 4;
        if (plen < 0) break;
        if (be16(p + 48) == 0) break; /* a zero window: the transport rule sees it */
        uint32_t seq = be32(p + 38), ack = be32(p + 42);
        tcp_t *d = &T[side], *o = &T[1 - side];
        if ((flags & 0x10) && plen && o->known && o->next != 0 && ack != o->next) {
            uint32_t dd = (ack - o->next) & MASK32;
            if (1 < dd && dd < 0x80000000u) break; /* lost bytes of the other side */
        }
        if (plen) {
            if (!d->known || seq != d->next || !U[side].ok) break;
            ul_t u = U[side];
            Py_ssize_t before = PyList_GET_SIZE(E.out);
            E.number = frame + records + 1;
            E.sec = sec;
            E.frac = frac;
            E.ifid = ifid;
            int got = ul_take(&u, p + 34 + (doff >> 4) * 4, plen, &E);
            Py_CLEAR(E.frame);
            Py_CLEAR(E.ts);
            if (got < 0) goto fail;
            if (got == 0) { /* left to Python whole: forget what this record made */
                if (PyList_SetSlice(E.out, before, PyList_GET_SIZE(E.out), NULL) < 0) goto fail;
                break;
            }
            u.changed = 1;
            U[side] = u;
            Py_ssize_t made = PyList_GET_SIZE(E.out) - before;
            if (made) {
                drains++;
                if (side != cur_side) { /* a new group: (side, events) */
                    cur = PyList_New(0);
                    if (cur == NULL) goto fail;
                    PyObject *g = Py_BuildValue("(iN)", side, cur);
                    if (g == NULL || PyList_Append(groups, g) < 0) { Py_XDECREF(g); goto fail; }
                    Py_DECREF(g);
                    cur_side = side;
                }
                Py_ssize_t at = PyList_GET_SIZE(cur);
                if (PyList_SetSlice(cur, at, at, E.out) < 0) goto fail;
                if (PyList_SetSlice(E.out, 0, PyList_GET_SIZE(E.out), NULL) < 0) goto fail;
            }
            d->next = (seq + (uint32_t)plen) & MASK32;
            d->delivered += (unsigned long long)plen;
            d->rstart[d->rnext] = start;
            d->rend[d->rnext] = start + caplen;
            d->ridx[d->rnext] = records;
            d->rnext = (d->rnext + 1) % RECENT;
            if (d->rcount < RECENT) d->rcount++;
            if (u.state == PDV_DATA && u.pdv_left > run_min) bulk_side = side;
        }
        off = next;
        records++;
        last_sec = sec;
        last_frac = frac;
        last_if = ifid;
        if (bulk_side >= 0) break; /* a bulk run follows: the bulk walker's */
    }

    PyObject *res = NULL, *ts = NULL, *r0 = NULL, *r1 = NULL, *u0 = NULL, *u1 = NULL;
    PyObject *s0 = NULL, *s1 = NULL;
    if (records) ts = timestamp(&L, last_sec, last_frac, last_if);
    else ts = Py_NewRef(Py_None);
    r0 = recent_list(chunk, &T[0]);
    r1 = recent_list(chunk, &T[1]);
    u0 = ul_result(&U[0]);
    u1 = ul_result(&U[1]);
    s0 = T[0].known ? PyLong_FromUnsignedLong(T[0].next) : Py_NewRef(Py_None);
    s1 = T[1].known ? PyLong_FromUnsignedLong(T[1].next) : Py_NewRef(Py_None);
    if (ts && r0 && r1 && u0 && u1 && s0 && s1)
        res = Py_BuildValue("(nnOOOKKOOOOOni)", off, records, ts, s0, s1, T[0].delivered,
                            T[1].delivered, u0, u1, r0, r1, groups, drains, bulk_side);
    Py_XDECREF(ts);
    Py_XDECREF(r0);
    Py_XDECREF(r1);
    Py_XDECREF(u0);
    Py_XDECREF(u1);
    Py_XDECREF(s0);
    Py_XDECREF(s1);
    Py_DECREF(groups);
    Py_DECREF(E.out);
    records_close(&L, &view);
    PyMem_Free(C[0].p);
    PyMem_Free(C[1].p);
    return res;
fail:
    Py_XDECREF(groups);
    Py_XDECREF(E.out);
    records_close(&L, &view);
    PyMem_Free(C[0].p);
    PyMem_Free(C[1].p);
    return NULL;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL,
     "Walk a run of small-message records of one connection (see the source for the "
     "contract)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dissectors._small",
    "Optional compiled walker of small-message runs (pure-Python fallback: the engine).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__small(void) { return PyModule_Create(&module); }
