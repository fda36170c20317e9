/* dissectors._runs: the optional compiled walker of a bulk run (docs/performance.md).
 *
 * Why C: in a night of C-STOREs nearly every captured record is a full-size segment of data
 * set bytes nobody collects, or a bare ACK of the other direction. The engine's Python fast
 * path only counts such a segment (dicomsniff/analysis/engine.py, Analyzer.consume), yet the
 * interpreter's cost per record (about 1 us to read the pcap record, unpack the headers, look
 * the flow up and count) is what keeps the one-core bulk ratio below the 7x tshark.
 * This walker does exactly that counting for the records that follow, in the reader's chunk,
 * and stops at the first record the Python path would treat in any other way; Python then goes
 * on from there. Without a compiler the package installs without it and the Python path does
 * everything (dicomsniff/analysis/accel.py); tests drive both and compare
 * (tests/test_accel.py, the fast-path fuzz target).
 *
 * walk(chunk, off, layout, fwd, rev, next_seq, o_next, countable, cross, limit) walks at most
 * `limit` pcap records (negative: no limit) from chunk[off] as long as each is, for the flow
 * whose keys are fwd/rev:
 *   - a record the engine's fast path takes (Ethernet, IPv4 without options, TCP, not a
 *     fragment, no SYN/FIN/RST, headers inside the IP total length, which fits the record,
 *     whole on the wire, a non-zero window);
 *   - in the fwd direction: an in-order segment (seq == next_seq) whose payload is data set
 *     bytes the parser grants as countable (fewer than `countable`), or, when `cross` allows,
 *     one that ends the current PDV and starts (in the same record) the next P-DATA-TF of the
 *     same uncollected presentation context, read with the same checks as the parser's own
 *     fast branch (dissectors/ul/stream.py ULStream.take); an ACK that would declare lost
 *     bytes of the other direction stops the walk;
 *   - in the rev direction: a bare ACK (one that closes the window is counted, for the
 *     transport rule: RuleSet.zero_window).
 * layout: ("pcap", big_endian, ticks, record_header_len, max_caplen, linktype), or
 * ("pcapng", big_endian, max_caplen, max_block, interfaces) where interfaces are (linktype,
 * ticks, offset in ticks) by interface ID; a pcapng record is taken only as an enhanced packet
 * block the reader's own hot loop takes (dicomsniff/sources/capture.py, same checks).
 * o_next: the other direction's next sequence number (None or 0: never judged, as in Python).
 * cross: None, or (context_id, max_pdu_length, may_leave_current_pdv).
 *
 * Returns (off, records, ts, next_seq, delivered, countable, recent, headers, at_header,
 * zero_windows, first_zero_window): where it stopped, how many records it consumed and the
 * timestamp of the last (None if none), the fwd direction's new next_seq and the payload bytes
 * delivered, what is left countable, the last 16 fwd payload records as (memoryview of the
 * frame, index) or, when the walk ended with the chunk (the reader leaves it next), as
 * ((sequence number, payload bytes), index), the copy dissectors/tcp.py copy_out would make
 * of them at once; the P-DATA headers it crossed as (index, ts, pdu_length, context_id,
 * message_control_header, value_length); whether it stopped right after a PDV ended at a
 * record boundary; how many rev bare ACKs advertised a zero window and the index of the
 * first (-1: none). An index counts records from 0 (the first record walked).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_records.h"

/* Records ahead whose headers are fetched into the cache while this one is read, guessing that
 * they are as long as this one (a bulk run's are): a file mapped rather than read
 * (dicomsniff/sources/_mapped.c) is not in the cache, and each record's headers would
 * otherwise be a wait on memory. Measured on bulk: 2 ahead 2 ms less, 4 ahead 4 ms, 8 ahead 3. */
#define AHEAD 4
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

static PyObject *walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "walk() takes 10 arguments");
        return NULL;
    }
    Py_ssize_t limit;
    if (limit_arg(args[9], &limit) < 0) return NULL;
    PyObject *chunk = args[0], *layout = args[2], *cross = args[8];
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    if (off == -1 && PyErr_Occurred()) return NULL;
    const char *fwd, *rev;
    Py_ssize_t fl, rl;
    if (PyBytes_AsStringAndSize(args[3], (char **)&fwd, &fl) < 0) return NULL;
    if (PyBytes_AsStringAndSize(args[4], (char **)&rev, &rl) < 0) return NULL;
    if (fl != 12 || rl != 12) {
        PyErr_SetString(PyExc_ValueError, "IPv4 flow keys are 12 bytes");
        return NULL;
    }
    uint32_t next_seq = (uint32_t)PyLong_AsUnsignedLongMask(args[5]);
    if (PyErr_Occurred()) return NULL;
    int o_known = 0; /* Python: `o.next_seq or ack`: None and 0 both mean "not judged" */
    uint32_t o_next = 0;
    if (args[6] != Py_None) {
        o_next = (uint32_t)PyLong_AsUnsignedLongMask(args[6]);
        if (PyErr_Occurred()) return NULL;
        o_known = o_next != 0;
    }
    long long countable = PyLong_AsLongLong(args[7]);
    if (countable == -1 && PyErr_Occurred()) return NULL;
    long cross_ctx = -1;
    unsigned long long cross_limit = 0;
    int may_leave = 0;
    if (cross != Py_None) {
        if (!PyArg_ParseTuple(cross, "lKp", &cross_ctx, &cross_limit, &may_leave)) return NULL;
    }
    layout_t L;
    Py_buffer view;
    if (records_open(chunk, layout, &L, &view) < 0) return NULL;
    const int big = L.big;
    const unsigned char *base = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;

    PyObject *headers = PyList_New(0);
    if (headers == NULL) { records_close(&L, &view); return NULL; }
    Py_ssize_t rstart[RECENT], rend[RECENT], ridx[RECENT], rpay[RECENT], rlen[RECENT];
    uint32_t rseq[RECENT];
    int rcount = 0, rnext = 0;
    int at_end = 0; /* stopped because the chunk holds no further whole record */
    Py_ssize_t zero = 0, zero_first = -1; /* the other side's bare ACKs with a zero window */
    Py_ssize_t records = 0;
    uint32_t last_sec = 0, last_frac = 0, last_if = 0;
    unsigned long long delivered = 0;
    int at_header = 0; /* the current PDV ended at a record boundary: a header comes next */
    if ((!L.ng && L.linktype != 1) || countable <= 0) n = 0; /* nothing to walk */

    while (records < limit && off >= 0 && n - off >= (L.ng ? 28 : L.hlen)) {
        const unsigned char *r = base + off;
        uint32_t sec, frac, caplen, olen, ifid = 0;
        Py_ssize_t start, next;
        if (!L.ng) {
            if (big) { sec = be32(r); frac = be32(r + 4); caplen = be32(r + 8); olen = be32(r + 12); }
            else { sec = le32(r); frac = le32(r + 4); caplen = le32(r + 8); olen = le32(r + 12); }
            start = off + L.hlen;
            if ((Py_ssize_t)caplen > L.maxcap) break;
            if ((Py_ssize_t)caplen > n - start) {
                at_end = 1;
                break;
            }
            next = start + caplen;
        } else { /* an enhanced packet block, as the reader's hot loop takes it */
            uint32_t w[7];
            for (int i = 0; i < 7; i++) w[i] = big ? be32(r + 4 * i) : le32(r + 4 * i);
            uint32_t blen = w[1];
            ifid = w[2]; sec = w[3]; frac = w[4]; caplen = w[5]; olen = w[6];
            if (w[0] == 6 && (Py_ssize_t)blen > n - off) {
                at_end = 1;
                break;
            }
            if (w[0] != 6 || (Py_ssize_t)caplen > L.maxcap
                    || (unsigned long long)caplen + 32 > blen || (Py_ssize_t)blen > L.maxblock
                    || (Py_ssize_t)ifid >= L.nif || (blen & 3)) break;
            const unsigned char *t = r + blen - 4;
            if ((big ? be32(t) : le32(t)) != blen || L.lt[ifid] != 1) break;
            start = off + 28;
            next = off + blen;
        }
        if (olen > caplen || caplen < 54) break;
        {   /* a hint only: an address past the chunk is never fetched */
            Py_ssize_t ahead = next + AHEAD * (next - off);
            if (ahead + 128 <= n) {
                PREFETCH(base + ahead);
                PREFETCH(base + ahead + 64);
            }
        }
        const unsigned char *p = base + start;
        if (be16(p + 12) != 0x0800 || p[14] != 0x45 || p[23] != 6) break;
        int dir;
        if (memcmp(p + 26, fwd, 12) == 0) dir = 0;
        else if (memcmp(p + 26, rev, 12) == 0) dir = 1;
        else break;
        uint32_t total = be16(p + 16), frag = be16(p + 20);
        unsigned doff = p[46], flags = p[47];
        if ((frag & 0x3FFF) || (flags & 0x07) || total + 14 > caplen || doff < 0x50) break;
        long nlen = (long)total - 20 - (long)(doff >> 4) * 4;
        if (nlen < 0) break;
        uint32_t seq = be32(p + 38), ack = be32(p + 42);
        if (dir == 1) {
            if (nlen) break; /* the other direction speaks: Python reads it */
            if (be16(p + 48) == 0) { /* a zero window: counted for the transport rule */
                if (zero_first < 0) zero_first = records;
                zero++;
            }
        } else {
            if (be16(p + 48) == 0) break; /* a zero window: the transport rule sees it */
            if ((flags & 0x10) && nlen && o_known && ack != o_next) {
                uint32_t d = (ack - o_next) & MASK32;
                if (1 < d && d < 0x80000000u) break; /* lost bytes of the other side */
            }
            if (nlen) {
                if (seq != next_seq) break;
                if (!at_header && nlen < countable) {
                    countable -= nlen;
                } else {
                    /* The current PDV ends in this record: the rest must be nothing, or the
                     * next P-DATA-TF's header and the start of its data PDV. */
                    long pos = 0;
                    if (!at_header) {
                        if (!may_leave) break;
                        pos = (long)countable;
                    }
                    long rem = nlen - pos;
                    if (rem == 0) {
                        countable = 0;
                        at_header = 1;
                    } else {
                        if (rem < 12) break;
                        const unsigned char *h = p + 34 + (doff >> 4) * 4 + pos;
                        unsigned long long plen = be32(h + 2), ilen = be32(h + 6);
                        unsigned ctx = h[10], mch = h[11];
                        unsigned long long vlen = ilen - 2;
                        if (h[0] != 4 || !(2 < ilen) || ilen + 4 > plen || mch > 3 || (vlen & 1)
                                || (mch & 1) || (long)ctx != cross_ctx || plen > cross_limit
                                || (unsigned long long)(rem - 12) >= vlen) break;
                        PyObject *ts = timestamp(&L, sec, frac, ifid);
                        if (ts == NULL) goto fail;
                        PyObject *item = Py_BuildValue("(nNKIIK)", records, ts, plen, ctx, mch,
                                                       vlen);
                        if (item == NULL || PyList_Append(headers, item) < 0) {
                            Py_XDECREF(item);
                            goto fail;
                        }
                        Py_DECREF(item);
                        countable = (long long)(vlen - (unsigned long long)(rem - 12));
                        at_header = 0;
                        /* leave it too only if it is not the last fragment and ends its PDU */
                        may_leave = !(mch & 2) && plen - 6 == vlen;
                    }
                }
                next_seq = (seq + (uint32_t)nlen) & MASK32;
                delivered += (unsigned long long)nlen;
                rstart[rnext] = start;
                rend[rnext] = start + caplen;
                ridx[rnext] = records;
                rpay[rnext] = start + 34 + (doff >> 4) * 4; /* nlen bytes of payload */
                rlen[rnext] = nlen;
                rseq[rnext] = seq;
                rnext = (rnext + 1) % RECENT;
                if (rcount < RECENT) rcount++;
            }
        }
        off = next;
        records++;
        last_sec = sec;
        last_frac = frac;
        last_if = ifid;
    }
    if (records < limit && off >= 0 && n - off < (L.ng ? 28 : L.hlen)) at_end = 1;

    PyObject *recent = PyList_New(rcount);
    if (recent == NULL) goto fail;
    for (int i = 0; i < rcount; i++) {
        int j = (rnext - rcount + i + RECENT) % RECENT;
        PyObject *mv;
        if (at_end) /* the reader leaves this chunk next: a copy, as copy_out would make it */
            mv = Py_BuildValue("(ky#)", (unsigned long)rseq[j], base + rpay[j], rlen[j]);
        else
            mv = PySequence_GetSlice(chunk, rstart[j], rend[j]);
        if (mv == NULL) { Py_DECREF(recent); goto fail; }
        PyObject *item = Py_BuildValue("(Nn)", mv, ridx[j]);
        if (item == NULL) { Py_DECREF(recent); goto fail; }
        PyList_SET_ITEM(recent, i, item);
    }
    PyObject *ts;
    if (records) {
        ts = timestamp(&L, last_sec, last_frac, last_if);
        if (ts == NULL) { Py_DECREF(recent); goto fail; }
    } else {
        ts = Py_NewRef(Py_None);
    }
    records_close(&L, &view);
    return Py_BuildValue("(nnNkKLNNOnn)", off, records, ts, (unsigned long)next_seq, delivered,
                         countable, recent, headers, at_header ? Py_True : Py_False, zero,
                         zero_first);
fail:
    Py_DECREF(headers);
    records_close(&L, &view);
    return NULL;
}

/* skip(chunk, off, layout, owner, limit[, want]): the records of other workers' connections,
 * for a -j worker (dicomsniff/parallel/shard.py ConnectionFilter). Walks at most `limit`
 * records (negative: no limit) from chunk[off] as long as each is one the filter's first branch
 * (ConnectionFilter.wanted) judges from its cache alone and gives to another worker: on
 * Ethernet, at least 38 bytes captured, IPv4 without options, TCP, not a fragment, its flow key
 * (the 12 bytes of addresses and ports) in `owner` (a dict: flow key -> this worker's) as
 * False. Anything else stops it: Python looks at that record as before. With `want` True it
 * walks the records the filter gives to this worker instead (the caller counts them). The record layout and
 * its checks are the reader's (as in walk above). Returns (off, records, ts of the last or
 * None). What it buys: the worker's Python look at each record of the others (reading the
 * record, unpacking its headers, a dict look-up), about 1 us a record, most of a worker's
 * overhead on query-heavy captures (docs/performance.md). */
static PyObject *skip(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "skip() takes 5 or 6 arguments");
        return NULL;
    }
    PyObject *chunk = args[0], *layout = args[2], *owner = args[3];
    PyObject *want = nargs == 6 ? args[5] : Py_False;
    if (want != Py_True && want != Py_False) {
        PyErr_SetString(PyExc_TypeError, "want: True or False");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    if (off == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t limit;
    if (limit_arg(args[4], &limit) < 0) return NULL;
    if (!PyDict_CheckExact(owner)) {
        PyErr_SetString(PyExc_TypeError, "owner: a dict");
        return NULL;
    }
    layout_t L;
    Py_buffer view;
    if (records_open(chunk, layout, &L, &view) < 0) return NULL;
    const int big = L.big;
    const unsigned char *base = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    Py_ssize_t records = 0;
    uint32_t last_sec = 0, last_frac = 0, last_if = 0;
    if (!L.ng && L.linktype != 1) n = 0; /* not Ethernet: the filter's slow branch decides */

    while (records < limit && off >= 0 && n - off >= (L.ng ? 28 : L.hlen)) {
        const unsigned char *r = base + off;
        uint32_t sec, frac, caplen, ifid = 0;
        Py_ssize_t start, next;
        if (!L.ng) {
            if (big) { sec = be32(r); frac = be32(r + 4); caplen = be32(r + 8); }
            else { sec = le32(r); frac = le32(r + 4); caplen = le32(r + 8); }
            start = off + L.hlen;
            if ((Py_ssize_t)caplen > L.maxcap || (Py_ssize_t)caplen > n - start) break;
            next = start + caplen;
        } else { /* an enhanced packet block, as the reader's hot loop takes it */
            uint32_t w[6];
            for (int i = 0; i < 6; i++) w[i] = big ? be32(r + 4 * i) : le32(r + 4 * i);
            uint32_t blen = w[1];
            ifid = w[2]; sec = w[3]; frac = w[4]; caplen = w[5];
            if (w[0] != 6 || (Py_ssize_t)blen > n - off || (Py_ssize_t)caplen > L.maxcap
                    || (unsigned long long)caplen + 32 > blen || (Py_ssize_t)blen > L.maxblock
                    || (Py_ssize_t)ifid >= L.nif || (blen & 3)) break;
            const unsigned char *t = r + blen - 4;
            if ((big ? be32(t) : le32(t)) != blen || L.lt[ifid] != 1) break;
            start = off + 28;
            next = off + blen;
        }
        if (caplen < 38) break;
        const unsigned char *p = base + start;
        if (be16(p + 12) != 0x0800 || p[14] != 0x45 || p[23] != 6 || (be16(p + 20) & 0x3FFF))
            break;
        PyObject *key = PyBytes_FromStringAndSize((const char *)p + 26, 12);
        if (key == NULL) goto fail;
        PyObject *mine = PyDict_GetItemWithError(owner, key); /* borrowed */
        Py_DECREF(key);
        if (mine == NULL && PyErr_Occurred()) goto fail;
        if (mine != want) break; /* the other kind, or not dealt yet: Python decides */
        off = next;
        records++;
        last_sec = sec;
        last_frac = frac;
        last_if = ifid;
    }
    PyObject *ts;
    if (records) {
        ts = timestamp(&L, last_sec, last_frac, last_if);
        if (ts == NULL) goto fail;
    } else {
        ts = Py_NewRef(Py_None);
    }
    records_close(&L, &view);
    return Py_BuildValue("(nnN)", off, records, ts);
fail:
    records_close(&L, &view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL,
     "Walk a bulk run of pcap records (see the module's source for the contract)."},
    {"skip", (PyCFunction)(void (*)(void))skip, METH_FASTCALL,
     "Skip the records of other -j workers' connections (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dissectors._runs",
    "Optional compiled walker of bulk runs of pcap records (pure-Python fallback: the engine).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__runs(void) { return PyModule_Create(&module); }
