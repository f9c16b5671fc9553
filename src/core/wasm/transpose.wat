;; 2-D transpose of 32-bit elements for modelbridge's weight layout changes (a Keras kernel
;; [in, out] stored as a torch Linear weight [out, in]), hand-written with WebAssembly SIMD128.
;;
;;   dst[c * ldd + r] = src[r * lds + c]       for r < rows, c < cols
;;
;; Both matrices are row-major in this module's memory; pointers are byte addresses and must not
;; overlap. `lds` is the length of a source row (at least cols) and `ldd` that of a result row (at
;; least rows), so a block of a larger matrix goes to a block of a larger result: the callers
;; (src/core/wasm/transpose.ts) transpose a tensor's rows as soon as their bytes have been read
;; into memory (a band of rows into its columns of the result), or a whole tensor held in memory
;; a band of its columns at a time (into a band of result rows). Elements are moved as bits,
;; never as floats, so NaN payloads and signed zeros stay exact.
;;
;; Method: the matrix is walked in square tiles of 16 x 16 elements (both the rows read and the
;; rows written then stay in L1 and the TLB); inside a tile, blocks of 4 x 4 are loaded as four
;; v128 rows and transposed with eight shuffles. A full tile goes through a scratch tile (see
;; $tile16); the partial tiles at the edges of the 4-aligned core store their blocks directly.
;; Rows and columns past the last multiple of 4 go through a scalar loop. `scratch` is 1 KiB of
;; the caller's memory.

(module
  (memory (export "memory") 1)

  (func $min (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.lt_u (local.get $a) (local.get $b))))

  (func (export "transpose32") (param $src i32) (param $dst i32) (param $rows i32) (param $cols i32) (param $lds i32) (param $ldd i32) (param $scratch i32)
    (local $rows4 i32) (local $cols4 i32)
    (local $r0 i32) (local $c0 i32) (local $r1 i32) (local $c1 i32) (local $r i32) (local $c i32)
    (local $sstride i32) (local $dstride i32) (local $s i32) (local $d i32)
    (local $a v128) (local $b v128) (local $x v128) (local $y v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rows4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $sstride (i32.shl (local.get $lds) (i32.const 2)))
    (local.set $dstride (i32.shl (local.get $ldd) (i32.const 2)))

    ;; The 4-aligned core, tile by tile (TILE = 16 elements).
    (local.set $r0 (i32.const 0))
    (block $rows_done
      (loop $rows_tiles
        (br_if $rows_done (i32.ge_u (local.get $r0) (local.get $rows4)))
        (local.set $r1 (call $min (i32.add (local.get $r0) (i32.const 16)) (local.get $rows4)))
        (local.set $c0 (i32.const 0))
        (block $cols_done
          (loop $cols_tiles
            (br_if $cols_done (i32.ge_u (local.get $c0) (local.get $cols4)))
            (local.set $c1 (call $min (i32.add (local.get $c0) (i32.const 16)) (local.get $cols4)))
            (if (i32.and (i32.eq (i32.sub (local.get $r1) (local.get $r0)) (i32.const 16)) (i32.eq (i32.sub (local.get $c1) (local.get $c0)) (i32.const 16)))
              (then
                (call $tile16 (local.get $src) (local.get $dst) (local.get $lds) (local.get $ldd) (local.get $r0) (local.get $c0) (local.get $scratch))
                (local.set $c0 (i32.add (local.get $c0) (i32.const 16)))
                (br $cols_tiles)))
            (local.set $r (local.get $r0))
            (block $tile_rows_done
              (loop $tile_rows
                (br_if $tile_rows_done (i32.ge_u (local.get $r) (local.get $r1)))
                (local.set $c (local.get $c0))
                (block $tile_cols_done
                  (loop $tile_cols
                    (br_if $tile_cols_done (i32.ge_u (local.get $c) (local.get $c1)))
                    ;; s = src + (r * lds + c) * 4; d = dst + (c * ldd + r) * 4
                    (local.set $s (i32.add (local.get $src)
                      (i32.shl (i32.add (i32.mul (local.get $r) (local.get $lds)) (local.get $c)) (i32.const 2))))
                    (local.set $d (i32.add (local.get $dst)
                      (i32.shl (i32.add (i32.mul (local.get $c) (local.get $ldd)) (local.get $r)) (i32.const 2))))
                    (local.set $a (v128.load (local.get $s)))
                    (local.set $b (v128.load (i32.add (local.get $s) (local.get $sstride))))
                    (local.set $x (v128.load (i32.add (local.get $s) (i32.shl (local.get $sstride) (i32.const 1)))))
                    (local.set $y (v128.load (i32.add (local.get $s) (i32.mul (local.get $sstride) (i32.const 3)))))
                    ;; t0 = a0 b0 a1 b1, t1 = a2 b2 a3 b3, t2 = x0 y0 x1 y1, t3 = x2 y2 x3 y3
                    (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b)))
                    (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b)))
                    (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x) (local.get $y)))
                    (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x) (local.get $y)))
                    ;; column k of the block (a_k b_k x_k y_k) is row k of the result
                    (v128.store (local.get $d)
                      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
                    (v128.store (i32.add (local.get $d) (local.get $dstride))
                      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
                    (v128.store (i32.add (local.get $d) (i32.shl (local.get $dstride) (i32.const 1)))
                      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
                    (v128.store (i32.add (local.get $d) (i32.mul (local.get $dstride) (i32.const 3)))
                      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
                    (local.set $c (i32.add (local.get $c) (i32.const 4)))
                    (br $tile_cols)))
                (local.set $r (i32.add (local.get $r) (i32.const 4)))
                (br $tile_rows)))
            (local.set $c0 (i32.add (local.get $c0) (i32.const 16)))
            (br $cols_tiles)))
        (local.set $r0 (i32.add (local.get $r0) (i32.const 16)))
        (br $rows_tiles)))

    ;; The columns past cols4, for every row.
    (local.set $r (i32.const 0))
    (block $edge_rows_done
      (loop $edge_rows
        (br_if $edge_rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (local.get $cols4))
        (block $edge_cols_done
          (loop $edge_cols
            (br_if $edge_cols_done (i32.ge_u (local.get $c) (local.get $cols)))
            (call $move (local.get $src) (local.get $dst) (local.get $ldd) (local.get $lds) (local.get $r) (local.get $c))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $edge_cols)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $edge_rows)))

    ;; The rows past rows4, for the columns below cols4.
    (local.set $r (local.get $rows4))
    (block $tail_rows_done
      (loop $tail_rows
        (br_if $tail_rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (i32.const 0))
        (block $tail_cols_done
          (loop $tail_cols
            (br_if $tail_cols_done (i32.ge_u (local.get $c) (local.get $cols4)))
            (call $move (local.get $src) (local.get $dst) (local.get $ldd) (local.get $lds) (local.get $r) (local.get $c))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tail_cols)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $tail_rows))))

  ;; One full 16 x 16 tile at source row r0, column c0: its 4 x 4 blocks are transposed into the
;; 1 KiB scratch tile (in L1), then each of the 16 result rows is written out as 64 contiguous bytes.
;; Writing the result straight from the blocks would touch 16 result rows 16 bytes at a time, and
;; with a power-of-two row length (a 4096-wide kernel) those rows share cache sets and evict each
;; other between visits.
(func $tile16 (param $src i32) (param $dst i32) (param $lds i32) (param $ldd i32) (param $r0 i32) (param $c0 i32) (param $scratch i32)
    (local $r i32) (local $c i32) (local $k i32) (local $s i32) (local $t i32) (local $d i32) (local $sstride i32)
    (local $a v128) (local $b v128) (local $x v128) (local $y v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $sstride (i32.shl (local.get $lds) (i32.const 2)))
    (local.set $r (i32.const 0))
    (loop $rows
      (local.set $c (i32.const 0))
      (loop $blocks
        (local.set $s (i32.add (local.get $src)
          (i32.shl (i32.add (i32.mul (i32.add (local.get $r0) (local.get $r)) (local.get $lds)) (i32.add (local.get $c0) (local.get $c))) (i32.const 2))))
        ;; scratch row c + k holds result row c0 + c + k; this block fills its bytes [r * 4, r * 4 + 16)
        (local.set $t (i32.add (local.get $scratch) (i32.shl (i32.add (i32.shl (local.get $c) (i32.const 4)) (local.get $r)) (i32.const 2))))
        (local.set $a (v128.load (local.get $s)))
        (local.set $b (v128.load (i32.add (local.get $s) (local.get $sstride))))
        (local.set $x (v128.load (i32.add (local.get $s) (i32.shl (local.get $sstride) (i32.const 1)))))
        (local.set $y (v128.load (i32.add (local.get $s) (i32.mul (local.get $sstride) (i32.const 3)))))
        (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b)))
        (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b)))
        (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x) (local.get $y)))
        (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x) (local.get $y)))
        (v128.store offset=0 (local.get $t) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
        (v128.store offset=64 (local.get $t) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
        (v128.store offset=128 (local.get $t) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
        (v128.store offset=192 (local.get $t) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br_if $blocks (i32.lt_u (local.get $c) (i32.const 16))))
      (local.set $r (i32.add (local.get $r) (i32.const 4)))
      (br_if $rows (i32.lt_u (local.get $r) (i32.const 16))))
    ;; result row c0 + k, columns [r0, r0 + 16): 64 contiguous bytes
    (local.set $k (i32.const 0))
    (loop $out
      (local.set $d (i32.add (local.get $dst)
        (i32.shl (i32.add (i32.mul (i32.add (local.get $c0) (local.get $k)) (local.get $ldd)) (local.get $r0)) (i32.const 2))))
      (local.set $t (i32.add (local.get $scratch) (i32.shl (local.get $k) (i32.const 6))))
      (v128.store offset=0 (local.get $d) (v128.load offset=0 (local.get $t)))
      (v128.store offset=16 (local.get $d) (v128.load offset=16 (local.get $t)))
      (v128.store offset=32 (local.get $d) (v128.load offset=32 (local.get $t)))
      (v128.store offset=48 (local.get $d) (v128.load offset=48 (local.get $t)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $out (i32.lt_u (local.get $k) (i32.const 16)))))

  ;; dst[c * ldd + r] = src[r * lds + c], one element.
  (func $move (param $src i32) (param $dst i32) (param $ldd i32) (param $lds i32) (param $r i32) (param $c i32)
    (i32.store
      (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $ldd)) (local.get $r)) (i32.const 2)))
      (i32.load
        (i32.add (local.get $src) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $lds)) (local.get $c)) (i32.const 2)))))))
