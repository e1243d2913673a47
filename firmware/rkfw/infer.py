# Board inference: character tokenizer, schema grammar (decoding that can only produce valid calls),
# and the integer recurrent engine. Shared with the host: training builds its masks with this Grammar,
# and the numpy reference (host/reku/model/reference.py) must give the same tokens as Engine.
from array import array
from struct import unpack_from

from rkfw import kernels as _kernels

# Output vocabulary: fixed tokens first, then one token per function, then one per enum value.
NOCALL = 0
END = 1
PRESENT = 2
ABSENT = 3
TRUE = 4
FALSE = 5
NUM_END = 6
DIG0 = 7
MINUS = 17
NUM_COPY = 18    # the integer is a run of digits of the request, chosen by the pointer
FN0 = 19
FIXED = ("<nocall>", "<end>", "<present>", "<absent>", "<true>", "<false>", "<numend>",
         "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "-", "<copy>")

_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4}


def zeros(typecode, n):
    """A zeroed array built from raw bytes (no temporary list; same on MicroPython and CPython)."""
    return array(typecode, bytes(n * _SIZES[typecode]))


# Grammar step kinds
K_TOKEN = 0
K_START = 1     # pointer: first character of a copied string
K_STOP = 2      # pointer: one past its last character
K_DONE = 3
K_NUM = 4       # pointer: first digit of a run of digits copied as an integer
MAX_RUN = 9     # longest digit run that can be copied

# Parameter states
_S_CALL = 0      # expecting NOCALL/FN (first call) or END/FN (after a call)
_S_OPT = 1       # expecting PRESENT/ABSENT
_S_VAL = 2       # expecting the value of the current parameter


def word_chars(alphabet):
    """Characters that belong to words (letters, digits, apostrophe); string spans start and end on them."""
    return "".join(c for c in alphabet if c.isalpha() or c.isdigit() or c == "'")


class Tokenizer:
    """Character-level: id 0 = unknown, 1.. = alphabet (lowercased input), SEP = len(alphabet)+1 ends the
    request; output token o is fed back as input id n_in + o."""

    def __init__(self, alphabet):
        self.alphabet = alphabet
        self.sep = len(alphabet) + 1
        self.n_in = len(alphabet) + 2
        self.word = word_chars(alphabet)
        # ASCII requests (the usual case) are read as bytes through these tables: indexing a str makes a
        # string per character (on MicroPython an interned-string lookup each), a bytes object does not.
        # Other characters are looked up in the alphabet itself (no dict of it on the heap).
        self.ascii_id = bytearray(128) if self.n_in <= 256 else array("H", bytes(256))     # ids fit a byte
        self.ascii_word = bytearray(128)
        for o in range(128):
            c = chr(o)
            self.ascii_id[o] = self.id_of(c.lower())
            self.ascii_word[o] = self.is_word(c)

    def id_of(self, low):
        """The id of one lowercased character: its place in the alphabet + 1, or 0 (unknown)."""
        return self.alphabet.find(low) + 1 if len(low) == 1 else 0

    def lower_ascii(self, text):
        """text lowercased as bytes when it is all ASCII (byte i is then character i); else None."""
        try:
            if len(text.encode()) != len(text):
                return None
        except UnicodeError:            # CPython: lone surrogates
            return None
        return text.lower().encode()

    def encode(self, text, ids):
        """Fill ids (array) with the ids of text's characters; returns how many (at most len(ids))."""
        n = min(len(text), len(ids))
        b = self.lower_ascii(text)
        if b is not None:
            tab = self.ascii_id
            for i in range(n):
                ids[i] = tab[b[i]]
            return n
        for i in range(n):
            ids[i] = self.id_of(text[i].lower())
        return n

    def is_word(self, c):
        """Word characters of the alphabet, and any non-ASCII character (ord of c itself: CPython lowercases
        some characters to two, e.g. U+0130)."""
        low = c.lower()
        return low in self.word or not self.id_of(low) and c != " " and ord(c) > 127


def _completable(neg, val, nd, lo, hi):
    """Is there an integer in [lo, hi] whose decimal form (optional '-', no leading zeros) starts with the
    prefix (sign neg, nd digits of value val)?"""
    if nd == 0:
        return (not neg and hi >= 0) or (neg and lo < 0)
    if nd > 1 and val < 10 ** (nd - 1):
        return False        # leading zero
    # magnitudes allowed for this sign
    if neg:
        if lo >= 0:
            return False
        a, b = max(1, -hi), -lo
    else:
        if hi < 0:
            return False
        a, b = max(0, lo), hi
    if a > b:
        return False
    if val == 0:
        return nd == 1 and a == 0 and not neg
    p = 1
    while True:
        lo_m = val * p
        if lo_m > b:
            return False
        if lo_m + p - 1 >= a:
            return True
        p *= 10


def _u16(b, o):
    return b[o] | b[o + 1] << 8


# Parameter kinds in the grammar table (ASCII of "e", "i", "s", "b")
_KE = 101
_KI = 105
_KS = 115
_KB = 98


class Grammar:
    """The decoding grammar of a compact schema: at each step, which output tokens (or which pointer
    positions) keep the output a valid list of calls. feed() advances; calls() gives the result.

    It reads the model's "grammar" tensor in place (docs/format.md; written by reku.model.rkufile.grammar_table):
    u16 n_fns, max_calls (bit 15: the model may refuse a value, below), n_vocab, n_strings, n_enum |
    u16 fn_name[n_fns] | u16 fn_first[n_fns + 1] (index of a
    function's first parameter record) | u16 str_off[n_strings + 1] | parameter records of 16 bytes (u16 name,
    u8 kind, u8 required, u16 a, u16 n, i32 lo, i32 hi) | u16 enum tokens | UTF-8 string area. Strings 0..n_vocab-1
    are the output vocabulary. No list or dict of the schema is built: the board keeps only the table's bytes.

    A model trained to refuse (bit 15 of max_calls, reku train's refusal negatives) may choose NOCALL where an
    integer's value begins or an enum value is chosen: the request asks for a value the schema does not allow
    ("set the thermostat to -40"), and the answer is no call, with reason() saying why and for which parameter."""

    def __init__(self, table):
        self.T = T = table
        n = self.n_fns = _u16(T, 0)
        self.max_calls = _u16(T, 2) & 0x7FFF
        self.refuse = _u16(T, 2) >> 15
        self._fn = 10
        self._first = 10 + 2 * n
        self._so = self._first + 2 * (n + 1)
        self._par = self._so + 2 * (_u16(T, 6) + 1)
        self._enum = self._par + 16 * _u16(T, self._first + 2 * n)
        self._area = self._enum + 2 * _u16(T, 8)
        self.allow = zeros("H", _u16(T, 4))
        self.n_allow = 0
        self.text = ""
        self.starts = []
        self.stops = []
        self.runs = []
        self.reset("")

    # ---- the table ----------------------------------------------------------------------------------
    def string(self, i):
        """String i of the table (i < n_vocab: output token i)."""
        T = self.T
        o = self._so + 2 * i
        return bytes(T[self._area + _u16(T, o):self._area + _u16(T, o + 2)]).decode()

    def fn_name(self, i):
        return self.string(_u16(self.T, self._fn + 2 * i))

    def _recs(self, i):
        """Offsets of function i's first parameter record and of the one after its last."""
        T = self.T
        o = self._first + 2 * i
        return self._par + 16 * _u16(T, o), self._par + 16 * _u16(T, o + 2)

    def summary(self):
        """{function name: [parameter names in schema order]} (INFO, SCHEMA)."""
        out = {}
        for i in range(self.n_fns):
            a, b = self._recs(i)
            out[self.fn_name(i)] = [self.string(_u16(self.T, r)) for r in range(a, b, 16)]
        return out

    def _lohi(self, r):
        return unpack_from("<ii", self.T, r + 8)

    # ---- string spans -------------------------------------------------------------------------------
    def set_text(self, text, tok):
        """The request (already truncated to what the model sees): word starts and stops for copying."""
        self.text = text
        n = len(text)
        b = tok.lower_ascii(text)       # character codes (bytes for ASCII text: no string per character)
        if b is None:
            b = [ord(c) for c in text]
            isw = [tok.is_word(c) for c in text]
        else:
            wt = tok.ascii_word
            isw = [wt[c] for c in b]
        self.starts = [i for i in range(n) if isw[i] and (i == 0 or not isw[i - 1])]
        self.stops = [i + 1 for i in range(n) if isw[i] and (i + 1 == n or not isw[i + 1])]
        self.runs = []          # (position, value) of each number: a run of digits or English number words
        i = 0
        while i < n:
            if 48 <= b[i] <= 57:            # "0".."9"
                j = i
                while j < n and 48 <= b[j] <= 57:
                    j += 1
                if j - i <= MAX_RUN:
                    v = int(text[i:j])
                    if i > 0 and b[i - 1] == 45 and (i < 2 or not isw[i - 2]):     # "-"
                        v = -v
                    self.runs.append((i, v))
                i = j
            else:
                i += 1
        words = []
        for k in range(len(self.starts)):
            a = self.starts[k]
            b = self.stops[k] if k < len(self.stops) else n
            words.append((a, text[a:b].lower()))
        # numbers in words, and a time of day's hour on the 24-hour clock where "pm"/"am" follows it ("9 pm",
        # "9:30 pm", "nine thirty pm", "9pm": 21 at the "pm"; "12 am": 0), "noon" 12 and "midnight" 0, so that a
        # model copies the hour instead of adding 12 itself
        k = 0
        e1 = e2 = s1 = -1                   # the last number: the word after it, the one before it, its first word
        v1 = v2 = 0
        while k < len(words):
            a, w = words[k]
            if _digits(w):
                used = 1 if len(w) <= MAX_RUN else 0        # its run is in self.runs already
                v = int(w) if used else 0
            else:
                v, used = number_words(words, k)
                if used:
                    self.runs.append((a, v))
            if used:
                e2, v2, e1, v1, s1 = e1, v1, k + used, v, k
                k += used
                continue
            h = -1
            if w == "pm" or w == "am":
                if e1 == k:
                    h = v2 if e2 == s1 else v1           # "9:30 pm", "nine thirty pm": the hour is the first
            elif (w.endswith("pm") or w.endswith("am")) and len(w) <= MAX_RUN and _digits(w[:-2]):
                h = int(w[:-2])                          # "9pm"
                a += len(w) - 2
                w = "pm" if w.endswith("pm") else "am"
            elif w == "o'clock" and e1 == k:
                e1 += 1                                  # "9 o'clock pm"
            elif w in ("evening", "afternoon", "morning", "night", "tonight"):
                # "7 in the evening", "9:30 in the morning", "11 at night", "8 tonight" (after "o'clock" too)
                j = k if w == "tonight" else k - 1 if w == "night" else k - 2
                if j > 0 and e1 == j and (w == "tonight" or words[j][1] == ("at" if w == "night" else "in")
                                          and (w == "night" or words[k - 1][1] == "the")):
                    h = v2 if e2 == s1 else v1
                    w = "am" if w == "morning" or w == "night" and (h < 6 or h == 12) else "pm"
            elif w == "noon" or w == "midday":
                self.runs.append((a, 12))
            elif w == "midnight":
                self.runs.append((a, 0))
            if 1 <= h <= 12:
                self.runs.append((a, h % 12 + (12 if w == "pm" else 0)))
            k += 1
        self.runs.sort()

    def reset(self, text=None, tok=None):
        if text is not None and tok is not None:
            self.set_text(text, tok)
        self.state = _S_CALL
        self.ncalls = 0
        self.done = False
        self.fn = -1
        self.pi = 0
        self.cur = None
        self.args = None
        self._calls = []
        self.neg = False
        self.val = 0
        self.nd = 0
        self.span0 = -1
        self.copying = False
        self.why = 0            # 1: a value was refused (reason())
        self.why_at = 0         # the refused parameter's record

    def reason(self):
        """None when there are calls, else (why, function, parameter): why is "not understood", or for a refused
        value "out of range" (an integer) or "unknown value" (an enum); function and parameter name the refused
        one (None otherwise)."""
        if self._calls:
            return None
        if self.why == 0:
            return ("not understood", None, None)
        r = self.why_at
        return ("out of range" if self.T[r + 2] == _KI else "unknown value", self.fn_name(self.fn),
                self.string(_u16(self.T, r)))

    # ---- stepping -----------------------------------------------------------------------------------
    def _param(self):
        """Offset of the current parameter's record (no tuple: it runs at every step)."""
        return self._par + 16 * (_u16(self.T, self._first + 2 * self.fn) + self.pi)

    def _add(self, t):
        self.allow[self.n_allow] = t
        self.n_allow += 1

    def next(self):
        """Kind of the next step. For K_TOKEN, allow[:n_allow] lists the permitted tokens; for K_START and
        K_STOP, positions() lists the permitted positions."""
        self.n_allow = 0
        if self.done:
            return K_DONE
        if self.state == _S_CALL:
            if self.ncalls == 0:
                self._add(NOCALL)
            else:
                self._add(END)
            if self.ncalls < self.max_calls:
                for i in range(self.n_fns):
                    self._add(FN0 + i)
            return K_TOKEN
        T = self.T
        r = self._param()
        kind = T[r + 2]
        if self.state == _S_OPT:
            if kind != _KS or self.starts:
                self._add(PRESENT)
            self._add(ABSENT)
            return K_TOKEN
        if kind == _KE:
            e = self._enum + 2 * _u16(T, r + 4)
            for j in range(_u16(T, r + 6)):
                self._add(_u16(T, e + 2 * j))
            if self.refuse:
                self._add(NOCALL)
            return K_TOKEN
        if kind == _KB:
            self._add(TRUE)
            self._add(FALSE)
            return K_TOKEN
        if kind == _KI:
            if self.copying:
                return K_NUM
            lo, hi = self._lohi(r)
            if self.nd == 0 and not self.neg:
                for pos, v in self.runs:
                    if lo <= v <= hi:
                        self._add(NUM_COPY)
                        break
                if lo < 0:
                    self._add(MINUS)
                if self.refuse:
                    self._add(NOCALL)
            if self.nd > 0:
                v = -self.val if self.neg else self.val
                if lo <= v <= hi:
                    self._add(NUM_END)
            for d in range(10):
                if _completable(self.neg, self.val * 10 + d, self.nd + 1, lo, hi):
                    self._add(DIG0 + d)
            return K_TOKEN
        # string: pointer steps
        return K_START if self.span0 < 0 else K_STOP

    def positions(self):
        """Permitted positions of a pointer step (call after next() returned K_START, K_STOP or K_NUM)."""
        r = self._param()
        if self.copying:
            lo, hi = self._lohi(r)
            return [pos for pos, v in self.runs if lo <= v <= hi]
        if self.span0 < 0:
            return self.starts
        s = self.span0
        lim = s + _u16(self.T, r + 4)
        out = [e for e in self.stops if s < e <= lim]
        if not out:
            out = [min(lim, len(self.text))]
        return out

    def _finish_param(self, value):
        if value is not None:
            self.args[self.string(_u16(self.T, self._param()))] = value
        self.pi += 1
        self._enter_param()

    def _enter_param(self):
        T = self.T
        r, end = self._recs(self.fn)
        r += 16 * self.pi
        while r < end:
            if not T[r + 3]:
                self.state = _S_OPT
                return
            if T[r + 2] == _KS and not self.starts:
                self.args[self.string(_u16(T, r))] = ""      # required string but nothing to copy
                self.pi += 1
                r += 16
                continue
            self.state = _S_VAL
            self.neg = False
            self.val = 0
            self.nd = 0
            self.span0 = -1
            self.copying = False
            return
        self._calls.append({"name": self.fn_name(self.fn), "arguments": self.args})
        self.ncalls += 1
        self.state = _S_CALL

    def feed(self, t):
        """Advance by token t (K_TOKEN steps) or by position t (pointer steps)."""
        if self.state == _S_CALL:
            if t == NOCALL or t == END:
                self.done = True
                return
            self.fn = t - FN0
            self.args = {}
            self.pi = 0
            self._enter_param()
            return
        if self.state == _S_OPT:
            if t == ABSENT:
                self._finish_param(None)
            else:
                self.state = _S_VAL
                self.neg = False
                self.val = 0
                self.nd = 0
                self.span0 = -1
                self.copying = False
            return
        kind = self.T[self._param() + 2]
        if t == NOCALL and (kind == _KE or kind == _KI and not self.copying):
            self.why = 1                # a refused value (refuse models only; a token step): no call at all
            self.why_at = self._param()
            self._calls = []
            self.done = True
            return
        if kind == _KE:
            self._finish_param(self.string(t)[2:])
        elif kind == _KB:
            self._finish_param(t == TRUE)
        elif kind == _KI:
            if self.copying:
                for pos, v in self.runs:
                    if pos == t:
                        self._finish_param(v)
                        break
            elif t == NUM_COPY:
                self.copying = True
            elif t == MINUS:
                self.neg = True
            elif t == NUM_END:
                self._finish_param(-self.val if self.neg else self.val)
            else:
                self.val = self.val * 10 + (t - DIG0)
                self.nd += 1
        else:
            if self.span0 < 0:
                self.span0 = t
            else:
                s = self.span0
                self._finish_param(self.text[s:t])

    def calls(self):
        return self._calls


NUM_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
             "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
NUM_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def _below100(words, k):
    """(value, words used) of 'seven', 'seventeen', 'forty', 'forty two' at words[k], or (0, 0)."""
    if k >= len(words):
        return 0, 0
    w = words[k][1]
    if w in NUM_UNITS:
        return NUM_UNITS.index(w), 1
    if w in NUM_TENS and w:
        v = 10 * NUM_TENS.index(w)
        if k + 1 < len(words):
            u = words[k + 1][1]
            if u in NUM_UNITS and 0 < NUM_UNITS.index(u) < 10:
                return v + NUM_UNITS.index(u), 2
        return v, 1
    return 0, 0


def _digits(w):
    """w is one or more of the digits 0-9 (str.isdigit() also takes "\u00b2", which int() refuses)."""
    for c in w:
        if not "0" <= c <= "9":
            return False
    return len(w) > 0


def number_words(words, k):
    """(value, words used) of an English number written in words starting at words[k] (word = (pos, text)):
    up to 'nine hundred and ninety nine', 'a hundred'; (0, 0) when none starts there."""
    v, used = _below100(words, k)
    if used == 0 and words[k][1] == "a":
        v, used = 1, 1
    elif used != 1 or not 0 < v < 10:
        return v, used
    if k + 1 >= len(words) or words[k + 1][1] != "hundred":
        return (0, 0) if words[k][1] == "a" else (v, used)
    h = v * 100
    j = k + 2
    if j < len(words) and words[j][1] == "and":
        v2, u2 = _below100(words, j + 1)
        if u2:
            return h + v2, j + 1 + u2 - k
    v2, u2 = _below100(words, j)
    return h + v2, j + u2 - k


def fed_id(kind, pos, ids):
    """The input id fed back after a pointer step: the character at a start (or first digit of a number),
    the last copied character at a stop."""
    return ids[pos - 1] if kind == K_STOP else ids[pos]


class Engine:
    """Integer inference of a .rku model: prefill the request, then decode under the schema grammar."""

    def __init__(self, model, kernels=None):
        self.kern = kernels if kernels is not None else _kernels.best()
        self.tier = self.kern.TIER
        a = model.arch
        self.model = model
        self.d = d = a["d"]
        self.f = f = a["f"]
        self.L = a["layers"]
        self.dk = dk = a["dk"]
        self.max_in = a["max_in"]
        self.acts = a["acts"]
        self.tok = Tokenizer(model.alphabet)
        self.O = a["n_out"]
        self.grammar = Grammar(model.tensor("grammar").data)
        T = model.tensor
        self.emb = T("emb")
        self.emb_t = self.emb.dtype == "t"
        self.sig = T("sig").data
        self.layers = []
        for i in range(self.L):
            p = "l%d." % i
            self.layers.append((T(p + "mu_r").data, T(p + "mu_k").data, T(p + "mu_v").data,
                                T(p + "w").data, T(p + "u").data,
                                T(p + "Wr"), T(p + "Wk"), T(p + "Wv"), T(p + "Wo"),
                                T(p + "cmu").data, T(p + "Ck"), T(p + "Cv"),
                                self.acts[i] == "fp4"))
        self.head = T("head")
        self.pk = T("ptr_k")
        self.pq = T("ptr_q")
        # FP4 layers keep x, xf, prev, prevc packed (docs/format.md; rkfw.fp4.act_bytes counts the buffers),
        # written by quant_fp4 and read by shift4, tmv4: the tier's (native), else rkfw.fp4's Python versions
        n4 = self.acts.count("fp4")
        fb = _kernels.fp4_bytes
        if n4:
            if d % 8 or f % 8:
                raise ValueError("FP4 activations need d and f multiples of 8 (d=%d, f=%d)" % (d, f))
            k = self.kern
            self.kern4 = (k.quant_fp4, k.shift4, k.tmv4)
            if None in self.kern4:
                from rkfw import fp4 as _fp4
                self.kern4 = (_fp4.quant_fp4, _fp4.shift4, _fp4.tmv4)
        # optional low-rank corrections "<name>.lr" (docs/format.md): their code only for a model that has them
        self.lr = None
        for name in model.tensors:
            if name.endswith(".lr"):
                from rkfw import lowrank
                self.lowrank = lowrank
                lowrank.setup(self, model, n4)
                break
        # preallocated state and scratch
        self.h = zeros("i", d)
        self.x = zeros("b", fb(d) if n4 == self.L else d)
        self.xs = zeros("b", d)
        self.r = zeros("i", d)
        self.key = zeros("i", d)           # the time-mixing key k (not the pointer keys K)
        self.v = zeros("i", d)
        self.o = zeros("i", d)
        self.hf = zeros("i", f)
        self.xf = zeros("b", fb(f) if n4 == self.L else f)
        self.prev = [zeros("b", fb(d) if a == "fp4" else d) for a in self.acts]
        self.prevc = [zeros("b", fb(d) if a == "fp4" else d) for a in self.acts]
        self.state = [zeros("i", d) for _ in range(self.L)]
        self.logits = zeros("i", self.O)
        self.K = zeros("b", ((self.max_in + 1) * dk))
        self.q32 = zeros("i", dk)
        self.q8 = zeros("b", dk)
        self.scores = zeros("i", (self.max_in + 1))
        self.ids = zeros("H", self.max_in)
        # A tier with a fused layer kernel (native) runs each layer's step in one call: its parameters and
        # buffers as fixed tuples (rk_layer's P and W). Models with low-rank corrections take the step below.
        self.fused = None
        fused = getattr(self.kern, "layer", None)
        if fused is not None and self.lr is None:
            self.fused = fused
            self.lp = []
            self.lw = []
            for i in range(self.L):
                mu_r, mu_k, mu_v, w, u, Wr, Wk, Wv, Wo, cmu, Ck, Cv, fp4 = self.layers[i]
                Ws = (Wr, Wk, Wv, Wo, Ck, Cv)
                self.lp.append(tuple([mu_r, mu_k, mu_v, w, u, self.sig, cmu] + [W.data for W in Ws] +
                                     [W.M for W in Ws] + [W.S for W in Ws] + [fp4]))
                self.lw.append((self.prev[i], self.prevc[i], self.state[i], self.x, self.xs, self.xf,
                                self.r, self.key, self.v, self.o, self.hf))
        # What the board learnt from corrections (rkfw.memory), set by the app when it has any
        self.memory = None
        # Called before every step (prefill and decode) when set: the app feeds its watchdog, drives the LED
        # and answers requests that arrive mid-inference with E_BUSY. It must not allocate.
        self.hook = None

    def _tmv(self, W, R, C, x, y, fp4=False):
        """y = W @ x for a ternary tensor (x int8, or packed FP4 with fp4), plus its low-rank correction when
        the model has one (rkfw.lowrank)."""
        if fp4:
            self.kern4[2](W.data, R, C, x, y)
        else:
            self.kern.tmv(W.data, R, C, x, y)
        if self.lr is not None:
            self.lowrank.correct(self, W, R, C, x, y, fp4)

    def _reset(self):
        for i in range(self.L):
            p, c, s = self.prev[i], self.prevc[i], self.state[i]
            for j in range(len(p)):
                p[j] = 0
                c[j] = 0
            for j in range(self.d):
                s[j] = 0

    def step(self, tid):
        """Feed one input id (character, SEP, or n_in + output token); leaves the residual stream in h."""
        if self.hook is not None:
            self.hook()
        k = self.kern
        d = self.d
        h = self.h
        e = self.emb
        if self.emb_t:
            k.embed_t(e.data, tid * (d // 5), d, e.M, e.S, h)
        else:
            k.embed(e.data, tid * d, d, e.M, e.S, h)
        fused = self.fused
        if fused is not None:
            lp = self.lp
            lw = self.lw
            for i in range(self.L):
                fused(h, lp[i], lw[i])
            return
        f = self.f
        # one name per line: MicroPython builds a tuple (48 bytes per step) for a, b, c, d = w, x, y, z
        x = self.x
        xs = self.xs
        r = self.r
        kk = self.key
        v = self.v
        o = self.o
        A = _kernels.A_LIM
        for i in range(self.L):
            mu_r, mu_k, mu_v, w, u, Wr, Wk, Wv, Wo, cmu, Ck, Cv, fp4 = self.layers[i]
            # an FP4 layer's x, xf, prev and prevc hold packed FP4 (quant_fp4 writes it, shift4 and tmv4 read it)
            if fp4:
                quant = self.kern4[0]
                shift = self.kern4[1]
            else:
                quant = k.quant_i8
                shift = k.shift
            prev = self.prev[i]
            # time mixing
            quant(h, x)
            shift(x, prev, mu_r, xs)
            self._tmv(Wr, d, d, xs, r)
            k.requant(r, d, Wr.M, Wr.S, -A, A)
            shift(x, prev, mu_k, xs)
            self._tmv(Wk, d, d, xs, kk)
            k.requant(kk, d, Wk.M, Wk.S, -A, A)
            shift(x, prev, mu_v, xs)
            self._tmv(Wv, d, d, xs, v)
            k.requant(v, d, Wv.M, Wv.S, -A, A)
            k.copy(x, prev)
            k.wkv(r, kk, v, self.state[i], w, u, self.sig, o)
            quant(o, x)
            self._tmv(Wo, d, d, x, o, fp4)
            k.requant(o, d, Wo.M, Wo.S, -_kernels.H_LIM, _kernels.H_LIM)
            k.add(h, o)
            # channel mixing
            prevc = self.prevc[i]
            quant(h, x)
            shift(x, prevc, cmu, xs)
            k.copy(x, prevc)
            self._tmv(Ck, f, d, xs, self.hf)
            k.requant(self.hf, f, Ck.M, Ck.S, 0, A)
            k.square(self.hf, f)
            quant(self.hf, self.xf)
            self._tmv(Cv, d, f, self.xf, o, fp4)
            k.requant(o, d, Cv.M, Cv.S, -_kernels.H_LIM, _kernels.H_LIM)
            k.add(h, o)

    def _key(self, j):
        """Pointer key of input position j from the current residual stream."""
        k = self.kern
        dk = self.dk
        k.quant_i8(self.h, self.xs)
        if self.lr is not None:
            self._tmv(self.pk, dk, self.d, self.xs, self.q32)
        else:
            k.tmv(self.pk.data, dk, self.d, self.xs, self.q32)
        k.quant_i8(self.q32, self.q8)
        k.copy(self.q8, self.K, j * dk)

    def prefill(self, text):
        """Reset the state, read the request (what fits of it: max_in characters) and SEP, each with its pointer
        key; the grammar is reset on that text. With a memory (rkfw.memory) the streams at the end of each word and
        at SEP are summed as the request is read, and its record, if any, recognised. Returns the characters read."""
        tok = self.tok
        ids = self.ids
        n = tok.encode(text, ids)
        self._reset()
        self.grammar.reset(text[:n], tok)
        m = self.memory
        k = self.kern
        stops = self.grammar.stops
        w = 0           # words read; with a memory, the stream at each word's last character is summed
        for j in range(n + 1):
            self.step(ids[j] if j < n else tok.sep)
            self._key(j)
            if m is not None and (j == n or w < len(stops) and stops[w] == j + 1):
                k.embed(self.xs, 0, self.d, 2, 1, self.o)     # (2x + 1) >> 1 = x: int8 to int32
                k.add(m.acc, self.o)
                w += 1
        if m is not None:
            m.recognise(k, w, self.xs, self.o)
        return n

    def choose(self):
        """The token of a token decision (xs holds the quantized stream): the correction the board learnt for a
        request it recognised (rkfw.memory), else the head's best allowed token."""
        g = self.grammar
        m = self.memory
        if m is not None and m.hit >= 0:
            t = m.replay(g.allow, g.n_allow)
            if t >= 0:
                return t
        self._tmv(self.head, self.O, self.d, self.xs, self.logits)
        return pick(self.logits, g.allow, g.n_allow)

    def run(self, text):
        """Calls for one request (and token counts). Allocates only per request (the strings of the calls),
        nothing per step; the app collects garbage after the reply is out (rkfw.app), not here."""
        k = self.kern
        n = self.prefill(text)
        g = self.grammar
        ids = self.ids
        n_out = 0
        d, dk = self.d, self.dk
        while True:
            kind = g.next()
            if kind == K_DONE:
                break
            k.quant_i8(self.h, self.xs)
            if kind == K_TOKEN:
                best = self.choose()
                g.feed(best)
                feed_id = self.tok.n_in + best
                if g.done:
                    n_out += 1
                    break
            else:
                self._tmv(self.pq, dk, d, self.xs, self.q32)
                k.quant_i8(self.q32, self.q8)
                k.dot_rows(self.K, n + 1, dk, self.q8, self.scores)
                pos = g.positions()
                best = pos[0]
                bs = self.scores[best]
                for p in pos:
                    if self.scores[p] > bs:
                        best, bs = p, self.scores[p]
                g.feed(best)
                feed_id = fed_id(kind, best, ids)
            n_out += 1
            self.step(feed_id)
        st = {"tokens_in": n + 1, "tokens_out": n_out}
        calls = g.calls()
        if not calls:
            st["why"] = g.reason()
        return calls, st


def pick(logits, allow, n):
    """Index in allow[:n] with the largest logit; ties go to the lowest token id."""
    best = allow[0]
    bv = logits[best]
    for i in range(1, n):
        t = allow[i]
        lv = logits[t]
        if lv > bv or (lv == bv and t < best):
            best, bv = t, lv
    return best
