# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""One step of event-driven transmission for B trials, in one pass (bioprop.event_pathways).

Compiled on first use by :mod:`bioprop.compiled`. It does, per trial b, what
``EventTransmission.advance_numpy`` does with a sparse product and five array passes:

    row = Σ_{j fired in trial b} J · Wᵀ[j]        (summed from zero, in the spikes' order)
    z   = Z[b] + row
    R[b] = R[b] · d + g · z,    Z[b] = z · d,    out[b] = R[b] + bias

with each operation rounded in the arrays' own type, in the same order, so that the two
agree bit for bit (compiled without contracting a · b + c into one fused multiply-add).
"""
from cython cimport floating


def advance(floating[:, ::1] Z, floating[:, ::1] R, const floating[:, ::1] weight_t,
            const int[::1] fired, Py_ssize_t n, double jump, double decay, double gain,
            floating[::1] row, const floating[::1] bias, floating[:, ::1] out):
    """Add the `n` spikes of `fired` (indices b·n_pre + j, as Brian2's spikespace holds
    them) to Z, advance Z and R by one step and write R + bias into `out`. `row` is
    scratch of n_post values.

    Returns the number of spikes added in trial order; any spike found out of order
    (Brian2 fills the spikespace in ascending order, so none should be) is added after
    its trial was advanced, with the jump advanced by one step too, which is the same
    up to rounding.
    """
    cdef Py_ssize_t B = Z.shape[0], n_post = Z.shape[1], n_pre = weight_t.shape[0]
    cdef Py_ssize_t b, k, s = 0, j, trial, in_order = 0
    cdef floating J = <floating>jump, d = <floating>decay, g = <floating>gain
    cdef floating a, z
    cdef const floating *w0
    cdef const floating *w1
    cdef const floating *w2
    cdef const floating *w3
    with nogil:
        for b in range(B):
            if s < n and fired[s] // n_pre == b:
                for k in range(n_post):
                    row[k] = 0
                # four rows per pass over `row`: a quarter of its loads and stores, the
                # same sums in the same order
                while (s + 3 < n and fired[s] // n_pre == b and fired[s + 1] // n_pre == b
                       and fired[s + 2] // n_pre == b and fired[s + 3] // n_pre == b):
                    w0 = &weight_t[fired[s] - b * n_pre, 0]
                    w1 = &weight_t[fired[s + 1] - b * n_pre, 0]
                    w2 = &weight_t[fired[s + 2] - b * n_pre, 0]
                    w3 = &weight_t[fired[s + 3] - b * n_pre, 0]
                    for k in range(n_post):
                        row[k] = (((row[k] + J * w0[k]) + J * w1[k]) + J * w2[k]) + J * w3[k]
                    s += 4
                    in_order += 4
                while s < n and fired[s] // n_pre == b:
                    w0 = &weight_t[fired[s] - b * n_pre, 0]
                    for k in range(n_post):
                        row[k] = row[k] + J * w0[k]
                    s += 1
                    in_order += 1
                for k in range(n_post):
                    z = Z[b, k] + row[k]
                    R[b, k] = R[b, k] * d + g * z
                    Z[b, k] = z * d
                    out[b, k] = R[b, k] + bias[k]
            else:
                for k in range(n_post):
                    z = Z[b, k]
                    R[b, k] = R[b, k] * d + g * z
                    Z[b, k] = z * d
                    out[b, k] = R[b, k] + bias[k]
            # out of order: its trial is done (after the last trial, every spike left)
            while s < n and (fired[s] // n_pre < b or b == B - 1):
                trial = fired[s] // n_pre
                j = fired[s] - trial * n_pre
                for k in range(n_post):
                    a = J * weight_t[j, k]
                    R[trial, k] = R[trial, k] + g * a
                    Z[trial, k] = Z[trial, k] + d * a
                    out[trial, k] = R[trial, k] + bias[k]
                s += 1
    return in_order
