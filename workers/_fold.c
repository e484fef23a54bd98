/* workers._fold: a chunk of tick messages read, checked and summed per symbol in one pass.
 *
 * fold(messages) -> list | None
 *
 * `messages` is a list of bytes, each an AMQP 1.0 message. When every one of them has exactly
 * the layout partitioning.codec.frame_message writes, a body in exactly the form
 * partitioning.codec.format_body writes (keys in its order, no whitespace, plain ASCII strings
 * without escapes, decimals as digits with an optional fraction, a timestamp ending in "Z"),
 * and every rule of partitioning.model.MarketData holds (symbol, prices > 0, bid <= ask, sizes
 * >= 0, a real date, sequence number, version), the result is one tuple per symbol, in the
 * order the symbols first appear:
 *
 *     (symbol, count, n, en, v, ev, high, float(high), low, float(low), first_us, last_us,
 *      last_price)
 *
 * the exact notional n * 10**en (sum of last_price * last_size at the smallest exponent of the
 * products), the exact volume v * 10**ev (sum of last_size at the smallest exponent of the
 * sizes), the highest and lowest last_price as their wire strings (equal values: the one with
 * the larger exponent, Decimal.compare_total's greater), the earliest and latest timestamp in
 * microseconds since the epoch, and the symbol's last last_price in the chunk.
 *
 * Otherwise None, and nothing is summed: the caller decodes the chunk the general way (which
 * accepts, or says what is wrong with, anything this declines). This code only ever declines
 * what it is not sure of; it never says what is wrong. It also declines numbers beyond its
 * integer arithmetic (more than 18 digits in a summed or compared decimal, a sum beyond 128
 * bits).
 *
 * timestamps(messages) -> list | None: each message's timestamp in microseconds since the epoch,
 * when fold() would vouch for every message (else None): for a latency probe.
 *
 * configure(head, symbol_key, tail, map_base) sets the layout (partitioning.codec's
 * _OWN_HEAD, _OWN_SYMBOL_KEY, _OWN_TAIL, _MAP_SIZE_BASE); fold() declines everything before.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef __int128 i128;

static unsigned char layout_head[64];
static Py_ssize_t layout_head_len = -1;
static unsigned char layout_key[32];
static Py_ssize_t layout_key_len;
static unsigned char layout_tail[64];
static Py_ssize_t layout_tail_len;
static int layout_map_base;

#define MAX_DIGITS 18
#define MAX_DECIMAL_CHARS 64
#define MAX_SYMBOL 32

static const uint64_t POW10[19] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL};

typedef struct {
    uint64_t coef; /* valid when digits <= MAX_DIGITS */
    int exp;       /* minus the number of fraction digits */
    int small;     /* coef holds the exact value */
    const unsigned char *text;
    Py_ssize_t len;
} Dec;

typedef struct {
    const unsigned char *sym;
    Py_ssize_t sym_len;
    uint64_t hash;
    uint64_t count;
    i128 n;
    int en;
    i128 v;
    int ev;
    Dec hi, lo, last;
    int64_t first_us, last_us;
} Entry;

/* A string field: bytes from p up to the closing quote, printable ASCII without '"' or '\'. */
static const unsigned char *read_string(const unsigned char *p, const unsigned char *end,
                                        Py_ssize_t *len) {
    const unsigned char *s = p;
    while (p < end && *p != '"') {
        if (*p < 0x20 || *p > 0x7E || *p == '\\')
            return NULL;
        p++;
    }
    if (p >= end)
        return NULL;
    *len = p - s;
    return p + 1; /* after the quote */
}

/* The end of a run of digits at p (none: p). */
static inline const unsigned char *digits(const unsigned char *p, const unsigned char *end) {
    while (p < end && (unsigned)*p - '0' < 10)
        p++;
    return p;
}

/* A decimal string field: digits, optionally '.' and digits, then the closing quote; after
 * the quote, or NULL. Sets *frac to the number of fraction digits. */
static inline const unsigned char *skip_decimal(const unsigned char *p, const unsigned char *end,
                                                int *frac) {
    const unsigned char *s = p;
    p = digits(p, end);
    if (p == s)
        return NULL;
    *frac = 0;
    if (p < end && *p == '.') {
        const unsigned char *f = ++p;
        p = digits(p, end);
        if (p == f)
            return NULL;
        *frac = (int)(p - f);
    }
    if (p >= end || *p != '"' || p - s > MAX_DECIMAL_CHARS)
        return NULL;
    return p + 1;
}

/* A decimal string field read as a number (see Dec): its coefficient holds every significant
 * digit when there are at most MAX_DIGITS of them and of fraction digits (`small`). */
static inline const unsigned char *read_decimal(const unsigned char *p, const unsigned char *end,
                                                Dec *d) {
    int frac;
    const unsigned char *after = skip_decimal(p, end, &frac);
    if (!after)
        return NULL;
    const unsigned char *q = p, *stop = after - 1; /* the closing quote */
    while (q < stop && (*q == '0' || *q == '.'))
        q++; /* leading zeros, in the whole part or the fraction */
    uint64_t coef = 0;
    int sig = 0;
    for (; q < stop; q++) {
        if (*q == '.')
            continue;
        if (++sig > MAX_DIGITS)
            break;
        coef = coef * 10 + (unsigned)(*q - '0');
    }
    d->text = p;
    d->len = stop - p;
    d->coef = coef;
    d->exp = -frac;
    d->small = sig <= MAX_DIGITS && frac <= MAX_DIGITS;
    return after;
}

/* Compare two small decimals exactly: -1, 0, 1. */
static int dec_cmp(const Dec *a, const Dec *b) {
    int m = a->exp < b->exp ? a->exp : b->exp;
    i128 x = (i128)a->coef * POW10[a->exp - m];
    i128 y = (i128)b->coef * POW10[b->exp - m];
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* Whether n bytes at a and b are equal (short lengths, inline: 8 bytes at a time, the last
 * 8 overlapping the previous ones). */
static inline __attribute__((always_inline)) int same(const unsigned char *a,
                                                      const unsigned char *b, Py_ssize_t n) {
    uint64_t x, y;
    if (n < 8) {
        while (n-- > 0)
            if (*a++ != *b++)
                return 0;
        return 1;
    }
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return 0;
    }
    if (i < n) {
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        if (x != y)
            return 0;
    }
    return 1;
}

static inline __attribute__((always_inline)) const unsigned char *
expect(const unsigned char *p, const unsigned char *end, const char *lit, size_t n) {
    if ((size_t)(end - p) < n || !same(p, (const unsigned char *)lit, (Py_ssize_t)n))
        return NULL;
    return p + n;
}
#define EXPECT(lit) (p = expect(p, end, lit, sizeof(lit) - 1))

static int two(const unsigned char *p) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The last date read (its 10 characters) and its day number: ticks mostly share one. */
static unsigned char last_date[10];
static int64_t last_days;
static int have_last_date;

/* A timestamp field: YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z then the closing quote. */
static inline const unsigned char *read_timestamp(const unsigned char *p, const unsigned char *end,
                                                  int64_t *micros) {
    if (end - p < 21)
        return NULL;
    int64_t days;
    if (have_last_date && same(p, last_date, 10)) {
        days = last_days;
    } else {
        int c1 = two(p), c2 = two(p + 2), mo = two(p + 5), dd = two(p + 8);
        if (c1 < 0 || c2 < 0 || mo < 0 || dd < 0 || p[4] != '-' || p[7] != '-')
            return NULL;
        int year = c1 * 100 + c2;
        static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (year < 1 || mo < 1 || mo > 12 || dd < 1)
            return NULL;
        int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        if (dd > dim[mo - 1] + (mo == 2 && leap))
            return NULL;
        days = days_from_civil(year, (unsigned)mo, (unsigned)dd);
        memcpy(last_date, p, 10);
        last_days = days;
        have_last_date = 1;
    }
    int hh = two(p + 11), mi = two(p + 14), ss = two(p + 17);
    if (hh < 0 || mi < 0 || ss < 0 || p[10] != 'T' || p[13] != ':' || p[16] != ':' || hh > 23 ||
        mi > 59 || ss > 59)
        return NULL;
    p += 19;
    int64_t frac = 0;
    if (p < end && *p == '.') {
        p++;
        int n = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (n < 6)
                frac = frac * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n < 1 || n > 9)
            return NULL;
        for (; n < 6; n++)
            frac *= 10;
    }
    if (end - p < 2 || p[0] != 'Z' || p[1] != '"')
        return NULL;
    *micros = ((days * 86400 + hh * 3600 + mi * 60 + ss) * 1000000) + frac;
    return p + 2;
}

/* A non-negative JSON integer (no leading zero) up to 2**63-1. */
static const unsigned char *read_uint63(const unsigned char *p, const unsigned char *end) {
    const unsigned char *s = p;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - s >= 19)
            return NULL;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == s || (p - s > 1 && *s == '0') || v > (uint64_t)INT64_MAX)
        return NULL;
    return p;
}

typedef struct {
    const unsigned char *sym;
    Py_ssize_t sym_len;
    Dec last_price, last_size;
    int64_t micros;
} Parsed;

static int symbol_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '/' || c == '^' || c == '=';
}

/* One message; 1 when it is vouched for (and `out` filled), else 0. */
static int parse_message(const unsigned char *m, Py_ssize_t len, Parsed *out) {
    Py_ssize_t key_end = layout_head_len + 1 + layout_key_len;
    if (len <= key_end || !same(m, layout_head, layout_head_len) ||
        !same(m + layout_head_len + 1, layout_key, layout_key_len))
        return 0;
    Py_ssize_t sym_len = m[key_end];
    if (m[layout_head_len] != layout_map_base + sym_len)
        return 0;
    Py_ssize_t pos = key_end + 1;
    if (len < pos + sym_len + layout_tail_len + 2)
        return 0;
    for (Py_ssize_t i = 0; i < sym_len; i++)
        if (m[pos + i] >= 0x80)
            return 0; /* the routing symbol: ASCII is valid UTF-8; leave the rest */
    pos += sym_len;
    if (!same(m + pos, layout_tail, layout_tail_len))
        return 0;
    pos += layout_tail_len;
    Py_ssize_t size;
    if (m[pos] == 0xA0) {
        size = m[pos + 1];
        pos += 2;
    } else if (m[pos] == 0xB0) {
        if (len < pos + 5)
            return 0;
        size = ((Py_ssize_t)m[pos + 1] << 24) | ((Py_ssize_t)m[pos + 2] << 16) |
               ((Py_ssize_t)m[pos + 3] << 8) | (Py_ssize_t)m[pos + 4];
        pos += 5;
    } else {
        return 0;
    }
    if (pos + size != len)
        return 0;

    const unsigned char *p = m + pos, *end = m + len;
    Py_ssize_t n;
    Dec bid, ask;
    int frac;
    if (!EXPECT("{\"symbol\":\""))
        return 0;
    const unsigned char *sym = p;
    if (!(p = read_string(p, end, &n)) || n < 1 || n > MAX_SYMBOL)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!symbol_char(sym[i]))
            return 0;
    out->sym = sym;
    out->sym_len = n;
    if (!EXPECT(",\"exchange\":\"") || !(p = read_string(p, end, &n)) || n < 1)
        return 0;
    if (!EXPECT(",\"bid_price\":\"") || !(p = read_decimal(p, end, &bid)))
        return 0;
    if (!EXPECT(",\"bid_size\":\"") || !(p = skip_decimal(p, end, &frac)))
        return 0;
    if (!EXPECT(",\"ask_price\":\"") || !(p = read_decimal(p, end, &ask)))
        return 0;
    if (!EXPECT(",\"ask_size\":\"") || !(p = skip_decimal(p, end, &frac)))
        return 0;
    if (!EXPECT(",\"last_price\":\"") || !(p = read_decimal(p, end, &out->last_price)))
        return 0;
    if (!EXPECT(",\"last_size\":\"") || !(p = read_decimal(p, end, &out->last_size)))
        return 0;
    if (!EXPECT(",\"volume\":\"") || !(p = skip_decimal(p, end, &frac)))
        return 0;
    if (!EXPECT(",\"timestamp\":\"") || !(p = read_timestamp(p, end, &out->micros)))
        return 0;
    if (!EXPECT(",\"sequence_number\":") || !(p = read_uint63(p, end)))
        return 0;
    if (!EXPECT(",\"version\":1}") || p != end)
        return 0;
    /* prices > 0 and bid <= ask, exactly; sizes cannot be negative here */
    if (!bid.small || !ask.small || !out->last_price.small || !out->last_size.small)
        return 0;
    if (bid.coef == 0 || ask.coef == 0 || out->last_price.coef == 0)
        return 0;
    if (dec_cmp(&bid, &ask) > 0)
        return 0;
    return 1;
}

/* x * 10**k with overflow check (x >= 0, 0 <= k). */
static int scale(i128 *x, int k) {
    while (k > 0) {
        int step = k > 18 ? 18 : k;
        if (__builtin_mul_overflow(*x, (i128)POW10[step], x))
            return 0;
        k -= step;
    }
    return 1;
}

/* Add c * 10**e into the sum s * 10**se, lowering se to e when e is smaller. */
static int add_at(i128 *s, int *se, i128 c, int e) {
    if (e < *se) {
        if (!scale(s, *se - e))
            return 0;
        *se = e;
    } else if (e > *se) {
        if (!scale(&c, e - *se))
            return 0;
    }
    return !__builtin_add_overflow(*s, c, s);
}

static uint64_t hash_bytes(const unsigned char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static PyObject *int128_to_py(i128 x) {
    /* x >= 0 */
    unsigned __int128 u = (unsigned __int128)x;
    uint64_t hi = (uint64_t)(u >> 64), lo = (uint64_t)u;
    if (!hi)
        return PyLong_FromUnsignedLongLong(lo);
    PyObject *h = PyLong_FromUnsignedLongLong(hi), *l = PyLong_FromUnsignedLongLong(lo);
    PyObject *sixty_four = PyLong_FromLong(64), *shifted = NULL, *result = NULL;
    if (h && l && sixty_four && (shifted = PyNumber_Lshift(h, sixty_four)))
        result = PyNumber_Or(shifted, l);
    Py_XDECREF(h);
    Py_XDECREF(l);
    Py_XDECREF(sixty_four);
    Py_XDECREF(shifted);
    return result;
}

static PyObject *dec_text(const Dec *d) {
    return PyUnicode_FromStringAndSize((const char *)d->text, d->len);
}

/* float(text), correctly rounded as Python's float() of the string. */
static PyObject *dec_float(const Dec *d) {
    char buf[MAX_DECIMAL_CHARS + 1];
    memcpy(buf, d->text, (size_t)d->len);
    buf[d->len] = '\0';
    double x = PyOS_string_to_double(buf, NULL, NULL);
    if (x == -1.0 && PyErr_Occurred())
        return NULL;
    return PyFloat_FromDouble(x);
}

/* Whether `arg` is a list (else a TypeError naming `function` is set). */
static int is_list(PyObject *arg, const char *function) {
    if (PyList_Check(arg))
        return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes a list of bytes, not %.100s", function,
                 Py_TYPE(arg)->tp_name);
    return 0;
}

static PyObject *fold(PyObject *self, PyObject *arg) {
    (void)self;
    if (!is_list(arg, "fold"))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(arg);
    if (layout_head_len < 0 || count == 0 || count > INT32_MAX / 4)
        Py_RETURN_NONE;
    Py_ssize_t cap = 16;
    while (cap < 2 * count)
        cap <<= 1;
    /* slots: index into entries, or -1; entries: the symbols in first-seen order (only those
       used are touched, so a chunk costs what its symbols do, not what its length might) */
    int32_t *slots = PyMem_Malloc((size_t)cap * sizeof(int32_t));
    Entry *entries = PyMem_Malloc((size_t)count * sizeof(Entry));
    if (!slots || !entries) {
        PyMem_Free(slots);
        PyMem_Free(entries);
        return PyErr_NoMemory();
    }
    memset(slots, 0xFF, (size_t)cap * sizeof(int32_t));
    Py_ssize_t symbols = 0;
    int ok = 1;
    for (Py_ssize_t i = 0; i < count && ok; i++) {
        PyObject *item = PyList_GET_ITEM(arg, i);
        if (!PyBytes_CheckExact(item)) {
            ok = 0;
            break;
        }
        Parsed t;
        if (!parse_message((const unsigned char *)PyBytes_AS_STRING(item),
                           PyBytes_GET_SIZE(item), &t)) {
            ok = 0;
            break;
        }
        uint64_t h = hash_bytes(t.sym, t.sym_len);
        Py_ssize_t slot = (Py_ssize_t)(h & (uint64_t)(cap - 1));
        Entry *e = NULL;
        for (;;) {
            int32_t at = slots[slot];
            if (at < 0)
                break;
            e = &entries[at];
            if (e->hash == h && e->sym_len == t.sym_len &&
                same(e->sym, t.sym, t.sym_len))
                break;
            e = NULL;
            slot = (slot + 1) & (cap - 1);
        }
        i128 product = (i128)t.last_price.coef * (i128)t.last_size.coef;
        int pexp = t.last_price.exp + t.last_size.exp;
        if (!e) {
            slots[slot] = (int32_t)symbols;
            e = &entries[symbols++];
            e->sym = t.sym;
            e->sym_len = t.sym_len;
            e->hash = h;
            e->count = 1;
            e->n = product;
            e->en = pexp;
            e->v = t.last_size.coef;
            e->ev = t.last_size.exp;
            e->hi = e->lo = e->last = t.last_price;
            e->first_us = e->last_us = t.micros;
            continue;
        }
        if (!add_at(&e->n, &e->en, product, pexp) ||
            !add_at(&e->v, &e->ev, (i128)t.last_size.coef, t.last_size.exp)) {
            ok = 0;
            break;
        }
        e->count++;
        int c = dec_cmp(&t.last_price, &e->hi);
        if (c > 0 || (c == 0 && t.last_price.exp > e->hi.exp))
            e->hi = t.last_price;
        c = dec_cmp(&t.last_price, &e->lo);
        if (c < 0 || (c == 0 && t.last_price.exp > e->lo.exp))
            e->lo = t.last_price;
        e->last = t.last_price;
        if (t.micros < e->first_us)
            e->first_us = t.micros;
        if (t.micros > e->last_us)
            e->last_us = t.micros;
    }
    PyObject *result = NULL;
    if (!ok) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    result = PyList_New(symbols);
    if (!result)
        goto done;
    for (Py_ssize_t k = 0; k < symbols; k++) {
        Entry *e = &entries[k];
        PyObject *row = PyTuple_New(13);
        if (!row) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, k, row);
        PyObject *items[13] = {
            PyUnicode_FromStringAndSize((const char *)e->sym, e->sym_len),
            PyLong_FromUnsignedLongLong(e->count),
            int128_to_py(e->n),
            PyLong_FromLong(e->en),
            int128_to_py(e->v),
            PyLong_FromLong(e->ev),
            dec_text(&e->hi),
            dec_float(&e->hi),
            dec_text(&e->lo),
            dec_float(&e->lo),
            PyLong_FromLongLong(e->first_us),
            PyLong_FromLongLong(e->last_us),
            dec_text(&e->last),
        };
        int failed = 0;
        for (int j = 0; j < 13; j++) {
            if (!items[j])
                failed = 1;
            PyTuple_SET_ITEM(row, j, items[j]); /* NULL items are skipped by the tuple's free */
        }
        if (failed) {
            Py_CLEAR(result);
            goto done;
        }
    }
done:
    PyMem_Free(slots);
    PyMem_Free(entries);
    return result;
}

static PyObject *timestamps(PyObject *self, PyObject *arg) {
    (void)self;
    if (!is_list(arg, "timestamps"))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(arg);
    if (layout_head_len < 0)
        Py_RETURN_NONE;
    PyObject *result = PyList_New(count);
    if (!result)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(arg, i);
        Parsed t;
        if (!PyBytes_CheckExact(item) ||
            !parse_message((const unsigned char *)PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item),
                           &t)) {
            Py_DECREF(result);
            Py_RETURN_NONE;
        }
        PyObject *micros = PyLong_FromLongLong(t.micros);
        if (!micros) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, micros);
    }
    return result;
}

static int copy_layout(PyObject *b, unsigned char *dst, size_t cap, Py_ssize_t *len) {
    if (!PyBytes_Check(b) || (size_t)PyBytes_GET_SIZE(b) > cap) {
        PyErr_SetString(PyExc_ValueError, "configure(): a layout part is not short bytes");
        return 0;
    }
    *len = PyBytes_GET_SIZE(b);
    memcpy(dst, PyBytes_AS_STRING(b), (size_t)*len);
    return 1;
}

static PyObject *configure(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *head, *key, *tail;
    int map_base;
    Py_ssize_t head_len;
    if (!PyArg_ParseTuple(args, "OOOi", &head, &key, &tail, &map_base))
        return NULL;
    if (!copy_layout(head, layout_head, sizeof layout_head, &head_len) ||
        !copy_layout(key, layout_key, sizeof layout_key, &layout_key_len) ||
        !copy_layout(tail, layout_tail, sizeof layout_tail, &layout_tail_len))
        return NULL;
    layout_map_base = map_base;
    layout_head_len = head_len;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fold", fold, METH_O, "fold(messages) -> per-symbol sums of a chunk, or None"},
    {"timestamps", timestamps, METH_O,
     "timestamps(messages) -> each tick's timestamp (us since the epoch), or None"},
    {"configure", configure, METH_VARARGS, "configure(head, symbol_key, tail, map_base)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fold",
                                    "A chunk of tick messages summed per symbol (see _fold.c).",
                                    -1, methods};

PyMODINIT_FUNC PyInit__fold(void) { return PyModule_Create(&module); }
