/* dissectors/_records.h: what the compiled walkers share (dissectors/_runs.c, the bulk-run
 * walker and the -j skip; dissectors/_small.c, the small-message walker), written once: the
 * byte order of the wire and of the capture file, how the capture's records are laid out (the
 * layout tuple of CaptureReader.walks) and the timestamp of a record as the reader computes it.
 * Included after <Python.h> (PY_SSIZE_T_CLEAN defined first) by each walker; each is its own
 * extension (setup.py, where this header is in both Extensions' depends).
 */
#ifndef DISSECTORS_RECORDS_H
#define DISSECTORS_RECORDS_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

#define RECENT 16 /* dissectors/tcp.py RECENT: the payload records each side hands back */
#define MASK32 0xFFFFFFFFu

static inline uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t le32(const unsigned char *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* How the records are laid out: a pcap file, or a pcapng section's interfaces. */
typedef struct {
    int ng, big;
    unsigned long long ticks; /* pcap */
    Py_ssize_t hlen, maxcap, maxblock;
    int linktype;
    Py_ssize_t nif; /* pcapng: per interface */
    int *lt;
    PyObject **iticks, **itsoff; /* borrowed from the layout tuple */
    double *dticks, *dtsoff;
    int *fast; /* ticks and offset exact as doubles (below 2**53) */
} layout_t;

static inline void layout_free(layout_t *l) {
    PyMem_Free(l->lt);
    PyMem_Free(l->iticks);
    PyMem_Free(l->itsoff);
    PyMem_Free(l->dticks);
    PyMem_Free(l->dtsoff);
    PyMem_Free(l->fast);
}

static inline int layout_parse(PyObject *t, layout_t *l) {
    memset(l, 0, sizeof(*l));
    const char *kind;
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 1) {
        PyErr_SetString(PyExc_TypeError, "layout: a tuple");
        return -1;
    }
    PyObject *k = PyTuple_GET_ITEM(t, 0);
    if (!PyUnicode_Check(k) || (kind = PyUnicode_AsUTF8(k)) == NULL) {
        PyErr_SetString(PyExc_TypeError, "layout: its kind first");
        return -1;
    }
    if (strcmp(kind, "pcap") == 0) {
        if (!PyArg_ParseTuple(t, "spKnni", &kind, &l->big, &l->ticks, &l->hlen, &l->maxcap,
                              &l->linktype)) return -1;
        if (l->hlen < 16 || l->maxcap < 0 || l->ticks == 0) {
            PyErr_SetString(PyExc_ValueError, "bad pcap layout");
            return -1;
        }
        return 0;
    }
    if (strcmp(kind, "pcapng") != 0) {
        PyErr_SetString(PyExc_ValueError, "layout: pcap or pcapng");
        return -1;
    }
    PyObject *ifaces;
    l->ng = 1;
    if (!PyArg_ParseTuple(t, "spnnO!", &kind, &l->big, &l->maxcap, &l->maxblock, &PyTuple_Type,
                          &ifaces)) return -1;
    Py_ssize_t nif = PyTuple_GET_SIZE(ifaces);
    l->nif = nif;
    Py_ssize_t m = nif ? nif : 1;
    l->lt = PyMem_Calloc(m, sizeof(int));
    l->iticks = PyMem_Calloc(m, sizeof(PyObject *));
    l->itsoff = PyMem_Calloc(m, sizeof(PyObject *));
    l->dticks = PyMem_Calloc(m, sizeof(double));
    l->dtsoff = PyMem_Calloc(m, sizeof(double));
    l->fast = PyMem_Calloc(m, sizeof(int));
    if (!l->lt || !l->iticks || !l->itsoff || !l->dticks || !l->dtsoff || !l->fast) {
        layout_free(l);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nif; i++) {
        PyObject *f = PyTuple_GET_ITEM(ifaces, i);
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 3 || !PyLong_Check(PyTuple_GET_ITEM(f, 1))
                || !PyLong_Check(PyTuple_GET_ITEM(f, 2))) {
            layout_free(l);
            PyErr_SetString(PyExc_TypeError, "interface: (linktype, ticks, offset)");
            return -1;
        }
        int over1 = 0, over2 = 0;
        long lt = PyLong_AsLongAndOverflow(PyTuple_GET_ITEM(f, 0), &over1);
        if (lt == -1 && PyErr_Occurred()) { layout_free(l); return -1; }
        l->lt[i] = over1 || lt < 0 || lt > 0xFFFF ? -1 : (int)lt;
        l->iticks[i] = PyTuple_GET_ITEM(f, 1);
        l->itsoff[i] = PyTuple_GET_ITEM(f, 2);
        long long ti = PyLong_AsLongLongAndOverflow(l->iticks[i], &over1);
        long long to = PyLong_AsLongLongAndOverflow(l->itsoff[i], &over2);
        if (PyErr_Occurred()) { layout_free(l); return -1; }
        l->fast[i] = !over1 && !over2 && 0 < ti && ti < (1LL << 53) && -(1LL << 53) < to
                     && to < (1LL << 53);
        l->dticks[i] = (double)ti;
        l->dtsoff[i] = (double)to;
    }
    return 0;
}

/* The walkers' common arguments. A record limit: how many records a call may take, any
 * negative number for no limit. */
static inline int limit_arg(PyObject *o, Py_ssize_t *limit) {
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    *limit = v < 0 ? PY_SSIZE_T_MAX : v;
    return 0;
}

/* The reader's chunk and its records' layout, taken together (on failure nothing is held)
 * and released together by records_close. */
static inline int records_open(PyObject *chunk, PyObject *layout, layout_t *l, Py_buffer *view) {
    if (layout_parse(layout, l) < 0) return -1;
    if (PyObject_GetBuffer(chunk, view, PyBUF_SIMPLE) < 0) {
        layout_free(l);
        return -1;
    }
    return 0;
}

static inline void records_close(layout_t *l, Py_buffer *view) {
    PyBuffer_Release(view);
    layout_free(l);
}

/* The timestamp as the reader computes it, so both paths give the same float: pcap
 * (sec * ticks + frac) / ticks, pcapng ((hi << 32 | lo) + offset) / ticks, Python's correctly
 * rounded integer division. Integers below 2**53 are exact doubles and one IEEE division
 * is then correctly rounded too (microsecond captures); past that (nanoseconds) Python
 * divides. */
static inline PyObject *timestamp(const layout_t *l, uint32_t a, uint32_t b, uint32_t ifid) {
    PyObject *num, *den;
    if (!l->ng) {
        unsigned long long whole = (unsigned long long)a * l->ticks + b;
        if (whole < (1ULL << 53) && l->ticks < (1ULL << 53))
            return PyFloat_FromDouble((double)whole / (double)l->ticks);
        num = PyLong_FromUnsignedLongLong(whole);
        if (num == NULL) return NULL;
        den = PyLong_FromUnsignedLongLong(l->ticks);
        if (den == NULL) { Py_DECREF(num); return NULL; }
    } else {
        unsigned long long whole = (unsigned long long)a << 32 | b;
        if (l->fast[ifid] && whole < (1ULL << 53)) {
            double sum = (double)whole + l->dtsoff[ifid]; /* exact: both below 2**53 ... */
            if (-9007199254740992.0 < sum && sum < 9007199254740992.0) /* ... and the sum */
                return PyFloat_FromDouble(sum / l->dticks[ifid]);
        }
        PyObject *w = PyLong_FromUnsignedLongLong(whole);
        if (w == NULL) return NULL;
        num = PyNumber_Add(w, l->itsoff[ifid]);
        Py_DECREF(w);
        if (num == NULL) return NULL;
        den = Py_NewRef(l->iticks[ifid]);
    }
    PyObject *ts = PyNumber_TrueDivide(num, den);
    Py_DECREF(num);
    Py_DECREF(den);
    return ts;
}

#endif /* DISSECTORS_RECORDS_H */
