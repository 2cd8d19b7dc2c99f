"""Merkle tree over journal record hashes, exactly as RFC 9162 §2.1 defines it.

Leaf ``i`` of the site's tree is the 32-byte SHA-256 hash of journal record ``seq = i + 1``
(the raw bytes, not the hex text). Hashes:

* empty tree: ``SHA-256()``
* leaf:       ``SHA-256(0x00 || leaf)``
* node:       ``SHA-256(0x01 || left || right)``, split at the largest power of two below n.

Everything here is pure: lists of hashes in, hashes and proofs out. Proof verification follows
the algorithms of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency), and the module is
tested against the transparency-dev/merkle test vectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    n = hi - lo
    if n == 1:
        return leaf_hashes[lo]
    k = _split(n)
    return node_hash(_mth(leaf_hashes, lo, lo + k), _mth(leaf_hashes, lo + k, hi))


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (see `leaf_hash`)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


class CompactRange:
    """Running root of a growing tree in O(log n) memory: append leaf hashes, read the root."""

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []  # perfect subtrees, largest first

    def append(self, leaf: bytes) -> None:
        self._peaks.append(leaf)
        self.size += 1
        # Merge equal-sized perfect subtrees: one merge per trailing 1 bit of the old size.
        n = self.size
        while n % 2 == 0:
            right = self._peaks.pop()
            left = self._peaks.pop()
            self._peaks.append(node_hash(left, right))
            n //= 2

    def to_json(self) -> str:
        """Size and peaks, for storing the range (the center keeps one per site)."""
        return json.dumps({"size": self.size, "peaks": [p.hex() for p in self._peaks]})

    @classmethod
    def from_json(cls, text: str) -> "CompactRange":
        data = json.loads(text) if text else {}
        out = cls()
        if isinstance(data, dict):
            out.size = int(data.get("size", 0))
            out._peaks = [bytes.fromhex(p) for p in data.get("peaks", [])]
        return out

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        r = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            r = node_hash(peak, r)
        return r


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 for leaf ``index`` of the tree over ``leaf_hashes``."""
    return _inclusion(index, len(leaf_hashes), lambda lo, hi: _mth(leaf_hashes, lo, hi))


def consistency_proof(size1: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 between the first ``size1`` leaves and all of them."""
    return _consistency(size1, len(leaf_hashes), lambda lo, hi: _mth(leaf_hashes, lo, hi))


def _inclusion(index: int, n: int, mth: Callable[[int, int], bytes]) -> list[bytes]:
    if not 0 <= index < n:
        raise ProofError(f"leaf index {index} is outside a tree of size {n}")
    proof: list[bytes] = []
    lo, hi, m = 0, n, index
    # Walk down from the root, collecting siblings; the RFC lists them bottom-up.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            proof.append(mth(lo + k, hi))
            hi = lo + k
        else:
            proof.append(mth(lo, lo + k))
            lo, m = lo + k, m - k
    proof.reverse()
    return proof


def _consistency(size1: int, n: int, mth: Callable[[int, int], bytes]) -> list[bytes]:
    if not 0 <= size1 <= n:
        raise ProofError(f"size {size1} is outside a tree of size {n}")
    if size1 == 0 or size1 == n:
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, n, size1, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(mth(lo + k, hi))
            hi = lo + k
        else:
            proof.append(mth(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        proof.append(mth(lo, hi))
    proof.reverse()
    return proof


class TreeNodes:
    """Every perfect subtree's hash of a growing tree, level by level (2n hashes for n leaves,
    kept in flat byte arrays), so that roots and proofs for any size take O(log n) hashes
    instead of rehashing the leaves: what the sync agent needs to send a consistency proof with
    every batch of a 600,000-record backlog."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        return len(self.levels[0]) // 32

    def append(self, leaf: bytes) -> None:
        self.levels[0] += leaf
        k, i = 0, self.size - 1
        while i % 2 == 1:  # a right child completes its parent
            level = self.levels[k]
            parent = node_hash(bytes(level[(i - 1) * 32:i * 32]), bytes(level[i * 32:(i + 1) * 32]))
            if len(self.levels) == k + 1:
                self.levels.append(bytearray())
            self.levels[k + 1] += parent
            k, i = k + 1, i // 2

    def extend(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi): a stored node when the range is a perfect aligned subtree."""
        n = hi - lo
        if n & (n - 1) == 0:
            k = n.bit_length() - 1
            i = lo >> k
            return bytes(self.levels[k][i * 32:(i + 1) * 32])
        k = _split(n)
        return node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ProofError(f"size {size} is outside a tree of size {self.size}")
        return self.mth(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return _inclusion(index, self.size if size is None else size, self.mth)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        size2 = self.size if size2 is None else size2
        if size2 > self.size:
            raise ProofError(f"size {size2} is outside a tree of size {self.size}")
        return _consistency(size1, size2, self.mth)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """RFC 9162 §2.1.3.2. ``leaf`` is the leaf hash. Raises `ProofError` when it fails."""
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32:
            raise ProofError("proof element is not 32 bytes")
        if sn == 0:
            raise ProofError("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the tree is deep")
    if r != expected_root:
        raise ProofError("computed root does not match the expected root")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2, with the usual edge cases: equal sizes need equal roots and an empty
    proof; size1 = 0 is consistent with anything and needs an empty proof."""
    if size1 < 0 or size2 < size1:
        raise ProofError(f"size {size2} cannot extend size {size1}")
    if size1 == size2:
        if proof:
            raise ProofError("proof must be empty for equal sizes")
        if root1 != root2:
            raise ProofError("roots differ for equal sizes")
        return
    if size1 == 0:
        if proof:
            raise ProofError("proof must be empty when the first tree is empty")
        return
    if not proof:
        raise ProofError("empty proof")
    if any(len(p) != 32 for p in proof):
        raise ProofError("proof element is not 32 bytes")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # exact power of two
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than needed")
    if fr != root1:
        raise ProofError("first root does not match")
    if sr != root2:
        raise ProofError("second root does not match")
