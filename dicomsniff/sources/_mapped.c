/* dicomsniff.sources._mapped: the optional compiled window onto a capture file
 * (docs/performance.md, "Reading without copying").
 *
 * Why: reading a capture with read() copies every byte from the page cache into the reader's
 * buffer, although the analysis of a bulk C-STORE run looks at a few header bytes of each
 * record (dissectors/_runs.c walks them): on a 135 MB capture that copy is a third of the
 * time after start-up. A window maps the file's pages instead (mmap, read-only, populated
 * at once), and the reader hands out views into it exactly as it does into its buffers
 * (dicomsniff/sources/capture.py, CaptureReader._fill). The window is unmapped when the last
 * view into it goes, so memory stays bounded by the few windows still looked at, never by the
 * file's size.
 *
 * Why in C and not Python's mmap module: a file that shrinks while mapped (another program
 * truncates it) makes every access past its new end raise SIGBUS, which would kill the
 * process. A window registers its address range; the SIGBUS handler installed here puts a
 * page of 0xFF bytes in place of a vanished page of a live window (the reader then meets a
 * record length no capture has, and stops there with an error) and marks the window
 * `truncated`; a SIGBUS anywhere else goes to the handler there was before. Without a C
 * compiler the package installs without this module and the reader uses read().
 *
 * Window(fd, offset, length): `offset` a multiple of the page size, `length` > 0; raises
 * OSError if the mapping fails and BufferError if LIVE windows are already mapped (the caller
 * then reads instead). The object exposes its bytes through the buffer protocol, read-only;
 * `truncated` is true once a page of it vanished.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LIVE 64 /* windows mapped at once: views pin a handful; beyond, the reader reads */

/* The registered ranges, read by the signal handler: a slot is free when its `hi` is 0.
 * Written with the GIL held; `hi` is set last and cleared first so the handler never sees a
 * half-written range. */
static struct {
    volatile uintptr_t lo, hi;
    volatile sig_atomic_t truncated;
} slots[LIVE];
static struct sigaction previous;
static int installed;
static long page;

static void on_sigbus(int sig, siginfo_t *info, void *ctx) {
    uintptr_t a = (uintptr_t)info->si_addr;
    for (int i = 0; i < LIVE; i++) {
        uintptr_t lo = slots[i].lo, hi = slots[i].hi;
        if (hi && lo <= a && a < hi) {
            void *at = (void *)(a & ~(uintptr_t)(page - 1));
            void *p = mmap(at, (size_t)page, PROT_READ | PROT_WRITE,
                           MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p != MAP_FAILED) {
                memset(p, 0xFF, (size_t)page);
                mprotect(p, (size_t)page, PROT_READ);
                slots[i].truncated = 1;
                return; /* the access is made again, and reads 0xFF */
            }
            break;
        }
    }
    /* Not a window's: what was there before handles it (the access faults again). */
    sigaction(SIGBUS, &previous, NULL);
    installed = 0;
    (void)sig;
    (void)ctx;
}

static int install(void) {
    if (installed) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    installed = 1;
    return 0;
}

typedef struct {
    PyObject_HEAD
    char *addr;
    Py_ssize_t length;
    int slot;
} Window;

static void window_dealloc(Window *w) {
    if (w->addr != NULL) {
        slots[w->slot].hi = 0;
        slots[w->slot].lo = 0;
        slots[w->slot].truncated = 0;
        munmap(w->addr, (size_t)w->length);
    }
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *window_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    int fd;
    long long offset;
    Py_ssize_t length;
    static char *names[] = {"fd", "offset", "length", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iLn", names, &fd, &offset, &length))
        return NULL;
    if (offset < 0 || offset % page || length <= 0) {
        PyErr_SetString(PyExc_ValueError, "offset: a multiple of the page size; length > 0");
        return NULL;
    }
    int slot = -1;
    for (int i = 0; i < LIVE; i++) {
        if (!slots[i].hi) {
            slot = i;
            break;
        }
    }
    if (slot < 0) {
        PyErr_SetString(PyExc_BufferError, "too many windows mapped");
        return NULL;
    }
    if (install() < 0) return NULL;
    int flags = MAP_SHARED;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE; /* one call maps the pages the walk touches anyway */
#endif
    void *p;
    Py_BEGIN_ALLOW_THREADS
    p = mmap(NULL, (size_t)length, PROT_READ, flags, fd, (off_t)offset);
    Py_END_ALLOW_THREADS
    if (p == MAP_FAILED) return PyErr_SetFromErrno(PyExc_OSError);
    Window *w = (Window *)type->tp_alloc(type, 0);
    if (w == NULL) {
        munmap(p, (size_t)length);
        return NULL;
    }
    w->addr = p;
    w->length = length;
    w->slot = slot;
    slots[slot].truncated = 0;
    slots[slot].lo = (uintptr_t)p;
    slots[slot].hi = (uintptr_t)p + (uintptr_t)length;
    return (PyObject *)w;
}

static int window_getbuffer(Window *w, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)w, w->addr, w->length, 1, flags);
}

static PyBufferProcs window_as_buffer = {(getbufferproc)window_getbuffer, NULL};

static Py_ssize_t window_len(Window *w) { return w->length; }

static PySequenceMethods window_as_sequence = {.sq_length = (lenfunc)window_len};

static PyObject *window_truncated(Window *w, void *closure) {
    (void)closure;
    return PyBool_FromLong(slots[w->slot].truncated);
}

static PyGetSetDef window_getset[] = {
    {"truncated", (getter)window_truncated, NULL,
     "True once a page of the window vanished (the file shrank while mapped).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject WindowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dicomsniff.sources._mapped.Window",
    .tp_basicsize = sizeof(Window),
    .tp_dealloc = (destructor)window_dealloc,
    .tp_as_buffer = &window_as_buffer,
    .tp_as_sequence = &window_as_sequence,
    .tp_getset = window_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A read-only mapping of part of a capture file (see the module's source).",
    .tp_new = window_new,
};

static PyObject *live(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    long count = 0;
    for (int i = 0; i < LIVE; i++) count += slots[i].hi != 0;
    return PyLong_FromLong(count);
}

static PyMethodDef methods[] = {
    {"live", live, METH_NOARGS, "How many windows are mapped now (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dicomsniff.sources._mapped",
    "Optional read-only windows onto a capture file (fallback: read()).", -1, methods,
};

PyMODINIT_FUNC PyInit__mapped(void) {
    page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    if (PyType_Ready(&WindowType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&WindowType);
    if (PyModule_AddObject(m, "Window", (PyObject *)&WindowType) < 0) {
        Py_DECREF(&WindowType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "PAGE", page) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
