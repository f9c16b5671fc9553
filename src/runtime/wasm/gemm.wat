;; Single-precision GEMM for modelbridge's CPU runtime, hand-written with WebAssembly SIMD128.
;;
;;   C[M,N] = A[M,K] · B  (+ bias, then an activation)
;;
;; All matrices are float32 in the (shared) memory the module imports; every pointer is a byte
;; address. The caller (src/runtime/wasm/gemm.ts) places the operands, writes a job descriptor
;; and calls `gemm` on one thread or on several at once (src/runtime/wasm/pool.ts), each thread
;; with its own descriptor: a rectangle [i0,i1) x [j0,j1) of C (or a range of the batch) and a
;; work area of its own, so threads never write the same bytes and need no locks.
;;
;; Method (GotoBLAS style):
;;   * A is packed into blocks of MR = 4 rows, stored k-major: block[p*4 + r] = A[i0 + r, p]
;;     (4 values of p at a time through a 4x4 transpose).
;;     A constant A (a convolution's weights) is packed once by `pack_a` and reused.
;;   * B is packed into panels of NR = 8 columns, stored k-major: panel[p*8 + c] = B(p, j0 + c).
;;     B comes as [K,N], as [N,K] (a Linear weight), pre-packed once by `pack_b` (a constant
;;     MatMul weight), or as the image of a 2-D convolution: the panel is then gathered straight
;;     from the NCHW input (implicit GEMM, no im2col matrix in memory).
;;     Rows past M and columns past N are packed as zeros, so the micro-kernel always computes
;;     full 4x8 tiles; edge tiles go through a scratch tile and only their valid part is stored.
;;   * The micro-kernel keeps the 4x8 tile of C in 8 f32x4 accumulators: per step of p it loads
;;     two f32x4 of the B panel, splats four A values (v128.load32_splat) and does 8 mul + 8 add.
;;   * K is cut into slices of at most KMAX = 256 (of equal length) so a B panel slice and an A block slice stay in L1; slices
;;     after the first add into C. Sums are float32 (like BLAS sgemm), each lane sums p in order.
;;     After the last slice a tile gets its bias (per row or per column) and its activation
;;     (clamp to [lo, hi]: Relu is [0, inf], Relu6 [0, 6]) while it is in L1 (a full tile in
;;     straight-line code, an edge tile in a loop over its valid part).
;;
;; Job descriptor (i32 words at `job`):
;;    0 m   1 n   2 k
;;    3 aMode (0: row-major with row stride lda, 1: packed by pack_a)   4 a   5 lda
;;    6 bMode (0: [K,N] row stride ldb, 1: [N,K] row stride ldb, 2: packed by pack_b,
;;             3: convolution, b points at a conv descriptor)          7 b   8 ldb
;;    9 c  10 ldc
;;   11 biasMode (0 none, 1 per row of C, 2 per column)  12 bias
;;   13 act (0 none, 1 clamp)  14 lo (f32 bits)  15 hi (f32 bits)
;;   16 i0  17 i1  18 j0  19 j1  (this thread's rectangle; i0 % 4 == 0, j0 % 8 == 0)
;;   20 work (this thread's area: 256 bytes + packed A rows + packed B panels, see gemm.ts)
;;   21 b0  22 b1  (this thread's range of the batch)  23 strideA  24 strideB  25 strideC (bytes)
;;   26 residual (0 none: else an array of C's layout added after the bias, before the clamp:
;;      a residual block's Add folded into the convolution before it)
;;   27 nc: columns packed and swept at a time (a multiple of 8; 0: all of [j0, j1) at once).
;;      Packing all of B first and then sweeping it once per K slice streams it through memory
;;      twice when it is larger than the caches (ResNet's first stage: 3136 columns x 576 = 7 MB
;;      per convolution); blocks of nc columns stay in L2 between their packing and their use,
;;      while the caller keeps A small enough to stay there too (gemm.ts chooses nc).
;; Conv descriptor (i32 words): 0 x (first image, first channel; image t at x + t*strideB) 1 C 2 H 3 W 4 OH 5 OW 6 KH 7 KW
;;   8 SH 9 SW 10 PH 11 PW 12 DH 13 DW; K = C*KH*KW rows in (channel, kh, kw) order, N = OH*OW.
;; Work area: [0, 128) scratch tile, [128, 160) column heights, [160, 192) column widths, from 256
;; the packed A rows (only when aMode = 0), then the packed B panels (unless bMode = 2).

(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; ---------------------------------------------------------------------------------------
  ;; Packing
  ;; ---------------------------------------------------------------------------------------

  ;; Pack `rows` (<= w) rows of a row-major matrix into a k-major block of width w:
  ;; dst[p*w + r] = src[r*ld + p] for r < rows, and 0 for rows <= r < w.  ld and k in elements.
  (func $packRows (param $src i32) (param $ld i32) (param $rows i32) (param $k i32) (param $w i32) (param $dst i32)
    (local $r i32) (local $s i32) (local $d i32) (local $end i32) (local $dstride i32)
    (local.set $dstride (i32.shl (local.get $w) (i32.const 2)))
    (local.set $r (i32.const 0))
    (block $rows_done
      (loop $rows_loop
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $w)))
        (local.set $d (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $end (i32.add (local.get $d) (i32.mul (local.get $k) (local.get $dstride))))
        (if (i32.lt_u (local.get $r) (local.get $rows))
          (then
            (local.set $s (i32.add (local.get $src)
              (i32.shl (i32.mul (local.get $r) (local.get $ld)) (i32.const 2))))
            (block $copy_done
              (br_if $copy_done (i32.ge_u (local.get $d) (local.get $end)))
              (loop $copy
                (f32.store (local.get $d) (f32.load (local.get $s)))
                (local.set $s (i32.add (local.get $s) (i32.const 4)))
                (local.set $d (i32.add (local.get $d) (local.get $dstride)))
                (br_if $copy (i32.lt_u (local.get $d) (local.get $end))))))
          (else
            (block $zero_done
              (br_if $zero_done (i32.ge_u (local.get $d) (local.get $end)))
              (loop $zero
                (f32.store (local.get $d) (f32.const 0))
                (local.set $d (i32.add (local.get $d) (local.get $dstride)))
                (br_if $zero (i32.lt_u (local.get $d) (local.get $end)))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows_loop))))

  ;; Pack 8 rows (all valid) of a row-major matrix into a k-major panel of width 8, four values
  ;; of p at a time with 4x4 transposes: dst[p*8 + r] = src[r*ld + p].  Requires k >= 4; the
  ;; last group of four is taken at p = k - 4 (it may overlap the previous one, harmlessly).
  (func $packRows8 (param $src i32) (param $ld i32) (param $k i32) (param $dst i32)
    (local $s0 i32) (local $s4 i32) (local $ldb i32) (local $p i32) (local $d i32) (local $last i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $ldb (i32.shl (local.get $ld) (i32.const 2)))
    (local.set $last (i32.sub (local.get $k) (i32.const 4)))
    (local.set $p (i32.const 0))
    (loop $next
      (if (i32.gt_s (local.get $p) (local.get $last)) (then (local.set $p (local.get $last))))
      (local.set $s0 (i32.add (local.get $src) (i32.shl (local.get $p) (i32.const 2))))
      (local.set $d (i32.add (local.get $dst) (i32.shl (local.get $p) (i32.const 5))))
      ;; rows 0..3 -> columns 0..3 of four panel rows
      (local.set $r0 (v128.load (local.get $s0)))
      (local.set $s4 (i32.add (local.get $s0) (local.get $ldb)))
      (local.set $r1 (v128.load (local.get $s4)))
      (local.set $s4 (i32.add (local.get $s4) (local.get $ldb)))
      (local.set $r2 (v128.load (local.get $s4)))
      (local.set $s4 (i32.add (local.get $s4) (local.get $ldb)))
      (local.set $r3 (v128.load (local.get $s4)))
      (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
      (local.set $t1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
      (local.set $t2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
      (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
      (v128.store offset=0 (local.get $d)
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t1)))
      (v128.store offset=32 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t1)))
      (v128.store offset=64 (local.get $d)
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t2) (local.get $t3)))
      (v128.store offset=96 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t2) (local.get $t3)))
      ;; rows 4..7 -> columns 4..7
      (local.set $s4 (i32.add (local.get $s4) (local.get $ldb)))
      (local.set $r0 (v128.load (local.get $s4)))
      (local.set $s4 (i32.add (local.get $s4) (local.get $ldb)))
      (local.set $r1 (v128.load (local.get $s4)))
      (local.set $s4 (i32.add (local.get $s4) (local.get $ldb)))
      (local.set $r2 (v128.load (local.get $s4)))
      (local.set $s4 (i32.add (local.get $s4) (local.get $ldb)))
      (local.set $r3 (v128.load (local.get $s4)))
      (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
      (local.set $t1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
      (local.set $t2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
      (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
      (v128.store offset=16 (local.get $d)
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t1)))
      (v128.store offset=48 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t1)))
      (v128.store offset=80 (local.get $d)
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t2) (local.get $t3)))
      (v128.store offset=112 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t2) (local.get $t3)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br_if $next (i32.lt_s (local.get $p) (local.get $k)))))

;; Pack 4 rows (all valid) of a row-major matrix into a k-major block of width 4, four values
  ;; of p at a time with a 4x4 transpose: dst[p*4 + r] = src[r*ld + p] (A's blocks: the scalar
  ;; loop above stores one float per 16-byte stride).  Requires k >= 4; the last group of four
  ;; is taken at p = k - 4 (it may overlap the previous one, harmlessly).
  (func $packRows4 (param $src i32) (param $ld i32) (param $k i32) (param $dst i32)
    (local $s i32) (local $ldb i32) (local $p i32) (local $d i32) (local $last i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $ldb (i32.shl (local.get $ld) (i32.const 2)))
    (local.set $last (i32.sub (local.get $k) (i32.const 4)))
    (local.set $p (i32.const 0))
    (loop $next
      (if (i32.gt_s (local.get $p) (local.get $last)) (then (local.set $p (local.get $last))))
      (local.set $s (i32.add (local.get $src) (i32.shl (local.get $p) (i32.const 2))))
      (local.set $d (i32.add (local.get $dst) (i32.shl (local.get $p) (i32.const 4))))
      (local.set $r0 (v128.load (local.get $s)))
      (local.set $s (i32.add (local.get $s) (local.get $ldb)))
      (local.set $r1 (v128.load (local.get $s)))
      (local.set $s (i32.add (local.get $s) (local.get $ldb)))
      (local.set $r2 (v128.load (local.get $s)))
      (local.set $s (i32.add (local.get $s) (local.get $ldb)))
      (local.set $r3 (v128.load (local.get $s)))
      (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
      (local.set $t1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
      (local.set $t2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
      (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
      (v128.store offset=0 (local.get $d)
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t1)))
      (v128.store offset=16 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t1)))
      (v128.store offset=32 (local.get $d)
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t2) (local.get $t3)))
      (v128.store offset=48 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t2) (local.get $t3)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br_if $next (i32.lt_s (local.get $p) (local.get $k)))))

  ;; Pack `cols` (<= 8) columns of a row-major [k, ld] matrix into a k-major panel of width 8:
  ;; dst[p*8 + c] = src[p*ld + c] for c < cols, and 0 for cols <= c < 8.
  (func $packCols8 (param $src i32) (param $ld i32) (param $cols i32) (param $k i32) (param $dst i32)
    (local $s i32) (local $d i32) (local $end i32) (local $ldb i32) (local $c i32)
    (local.set $ldb (i32.shl (local.get $ld) (i32.const 2)))
    (local.set $s (local.get $src))
    (local.set $d (local.get $dst))
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $k) (i32.const 5))))
    (if (i32.eq (local.get $cols) (i32.const 8))
      (then
        (block $done
          (br_if $done (i32.ge_u (local.get $d) (local.get $end)))
          (loop $full
            (v128.store offset=0 (local.get $d) (v128.load offset=0 (local.get $s)))
            (v128.store offset=16 (local.get $d) (v128.load offset=16 (local.get $s)))
            (local.set $s (i32.add (local.get $s) (local.get $ldb)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (br_if $full (i32.lt_u (local.get $d) (local.get $end))))))
      (else
        (block $done
          (br_if $done (i32.ge_u (local.get $d) (local.get $end)))
          (loop $part
            (v128.store offset=0 (local.get $d) (v128.const i32x4 0 0 0 0))
            (v128.store offset=16 (local.get $d) (v128.const i32x4 0 0 0 0))
            (local.set $c (i32.const 0))
            (loop $col
              (f32.store (i32.add (local.get $d) (i32.shl (local.get $c) (i32.const 2)))
                (f32.load (i32.add (local.get $s) (i32.shl (local.get $c) (i32.const 2)))))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br_if $col (i32.lt_u (local.get $c) (local.get $cols))))
            (local.set $s (i32.add (local.get $s) (local.get $ldb)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (br_if $part (i32.lt_u (local.get $d) (local.get $end))))))))

  ;; ---------------------------------------------------------------------------------------
  ;; Micro-kernel: one 4x8 tile of C over a K slice of length kc (>= 1).
  ;;   pa: packed A block at the slice start (16 bytes per p)
  ;;   pb: packed B panel at the slice start (32 bytes per p)
  ;;   c:  tile origin in C, ldc: row stride of C in bytes
  ;;   accum: 0 stores the tile, 1 adds it to what C holds
  ;; ---------------------------------------------------------------------------------------
  (func $kernel4x8 (param $pa i32) (param $pb i32) (param $kc i32) (param $c i32) (param $ldc i32) (param $accum i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $a v128)
    (local $end i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)

    ;; one step of p per iteration: V8 (TurboFan) keeps this loop entirely in registers, while
    ;; unrolled bodies get their loads hoisted and accumulators spilled (4x unrolled measured
    ;; ~33 GFLOP/s against ~58 for this loop on a 2-core x86_64 VM, Node 20)
    (local.set $end (i32.add (local.get $pb) (i32.shl (local.get $kc) (i32.const 5))))
    (loop $step
      (local.set $b0 (v128.load offset=0 (local.get $pb)))
      (local.set $b1 (v128.load offset=16 (local.get $pb)))
      (local.set $a (v128.load32_splat offset=0 (local.get $pa)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=4 (local.get $pa)))
      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=8 (local.get $pa)))
      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=12 (local.get $pa)))
      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $pa (i32.add (local.get $pa) (i32.const 16)))
      (local.set $pb (i32.add (local.get $pb) (i32.const 32)))
      (br_if $step (i32.lt_u (local.get $pb) (local.get $end))))

    ;; write the tile
    (local.set $c1 (i32.add (local.get $c) (local.get $ldc)))
    (local.set $c2 (i32.add (local.get $c1) (local.get $ldc)))
    (local.set $c3 (i32.add (local.get $c2) (local.get $ldc)))
    (if (local.get $accum)
      (then
        (local.set $c00 (f32x4.add (v128.load offset=0 (local.get $c)) (local.get $c00)))
        (local.set $c01 (f32x4.add (v128.load offset=16 (local.get $c)) (local.get $c01)))
        (local.set $c10 (f32x4.add (v128.load offset=0 (local.get $c1)) (local.get $c10)))
        (local.set $c11 (f32x4.add (v128.load offset=16 (local.get $c1)) (local.get $c11)))
        (local.set $c20 (f32x4.add (v128.load offset=0 (local.get $c2)) (local.get $c20)))
        (local.set $c21 (f32x4.add (v128.load offset=16 (local.get $c2)) (local.get $c21)))
        (local.set $c30 (f32x4.add (v128.load offset=0 (local.get $c3)) (local.get $c30)))
        (local.set $c31 (f32x4.add (v128.load offset=16 (local.get $c3)) (local.get $c31)))))
    (v128.store offset=0 (local.get $c) (local.get $c00))
    (v128.store offset=16 (local.get $c) (local.get $c01))
    (v128.store offset=0 (local.get $c1) (local.get $c10))
    (v128.store offset=16 (local.get $c1) (local.get $c11))
    (v128.store offset=0 (local.get $c2) (local.get $c20))
    (v128.store offset=16 (local.get $c2) (local.get $c21))
    (v128.store offset=0 (local.get $c3) (local.get $c30))
    (v128.store offset=16 (local.get $c3) (local.get $c31)))

;; ---------------------------------------------------------------------------------------
  ;; A full 4x8 tile's bias and clamp, straight-line: the same operations in the same order as
  ;; $epilogue (which edge tiles go through), without its per-row loop and branches. Not in the
  ;; micro-kernel itself: any code after its loop makes V8 spill an accumulator in every step.
  ;; ---------------------------------------------------------------------------------------
  (func $post4x8 (param $c i32) (param $ldc i32) (param $bias i32) (param $biasMode i32) (param $act i32) (param $lo f32) (param $hi f32) (param $res i32)
    (local $c1 i32) (local $c2 i32) (local $c3 i32)
    (local $v00 v128) (local $v01 v128) (local $v10 v128) (local $v11 v128)
    (local $v20 v128) (local $v21 v128) (local $v30 v128) (local $v31 v128)
    (local $b0 v128) (local $b1 v128)
    (local.set $c1 (i32.add (local.get $c) (local.get $ldc)))
    (local.set $c2 (i32.add (local.get $c1) (local.get $ldc)))
    (local.set $c3 (i32.add (local.get $c2) (local.get $ldc)))
    (local.set $v00 (v128.load offset=0 (local.get $c)))
    (local.set $v01 (v128.load offset=16 (local.get $c)))
    (local.set $v10 (v128.load offset=0 (local.get $c1)))
    (local.set $v11 (v128.load offset=16 (local.get $c1)))
    (local.set $v20 (v128.load offset=0 (local.get $c2)))
    (local.set $v21 (v128.load offset=16 (local.get $c2)))
    (local.set $v30 (v128.load offset=0 (local.get $c3)))
    (local.set $v31 (v128.load offset=16 (local.get $c3)))
    (if (i32.eq (local.get $biasMode) (i32.const 1))
      (then
        (local.set $b0 (v128.load32_splat offset=0 (local.get $bias)))
        (local.set $v00 (f32x4.add (local.get $v00) (local.get $b0)))
        (local.set $v01 (f32x4.add (local.get $v01) (local.get $b0)))
        (local.set $b0 (v128.load32_splat offset=4 (local.get $bias)))
        (local.set $v10 (f32x4.add (local.get $v10) (local.get $b0)))
        (local.set $v11 (f32x4.add (local.get $v11) (local.get $b0)))
        (local.set $b0 (v128.load32_splat offset=8 (local.get $bias)))
        (local.set $v20 (f32x4.add (local.get $v20) (local.get $b0)))
        (local.set $v21 (f32x4.add (local.get $v21) (local.get $b0)))
        (local.set $b0 (v128.load32_splat offset=12 (local.get $bias)))
        (local.set $v30 (f32x4.add (local.get $v30) (local.get $b0)))
        (local.set $v31 (f32x4.add (local.get $v31) (local.get $b0)))))
    (if (i32.eq (local.get $biasMode) (i32.const 2))
      (then
        (local.set $b0 (v128.load offset=0 (local.get $bias)))
        (local.set $b1 (v128.load offset=16 (local.get $bias)))
        (local.set $v00 (f32x4.add (local.get $v00) (local.get $b0)))
        (local.set $v01 (f32x4.add (local.get $v01) (local.get $b1)))
        (local.set $v10 (f32x4.add (local.get $v10) (local.get $b0)))
        (local.set $v11 (f32x4.add (local.get $v11) (local.get $b1)))
        (local.set $v20 (f32x4.add (local.get $v20) (local.get $b0)))
        (local.set $v21 (f32x4.add (local.get $v21) (local.get $b1)))
        (local.set $v30 (f32x4.add (local.get $v30) (local.get $b0)))
        (local.set $v31 (f32x4.add (local.get $v31) (local.get $b1)))))
    (if (local.get $res)
      (then
        (local.set $v00 (f32x4.add (local.get $v00) (v128.load offset=0 (local.get $res))))
        (local.set $v01 (f32x4.add (local.get $v01) (v128.load offset=16 (local.get $res))))
        (local.set $res (i32.add (local.get $res) (local.get $ldc)))
        (local.set $v10 (f32x4.add (local.get $v10) (v128.load offset=0 (local.get $res))))
        (local.set $v11 (f32x4.add (local.get $v11) (v128.load offset=16 (local.get $res))))
        (local.set $res (i32.add (local.get $res) (local.get $ldc)))
        (local.set $v20 (f32x4.add (local.get $v20) (v128.load offset=0 (local.get $res))))
        (local.set $v21 (f32x4.add (local.get $v21) (v128.load offset=16 (local.get $res))))
        (local.set $res (i32.add (local.get $res) (local.get $ldc)))
        (local.set $v30 (f32x4.add (local.get $v30) (v128.load offset=0 (local.get $res))))
        (local.set $v31 (f32x4.add (local.get $v31) (v128.load offset=16 (local.get $res))))))
    (if (local.get $act)
      (then
        (local.set $b0 (f32x4.splat (local.get $lo)))
        (local.set $b1 (f32x4.splat (local.get $hi)))
        (local.set $v00 (f32x4.min (f32x4.max (local.get $v00) (local.get $b0)) (local.get $b1)))
        (local.set $v01 (f32x4.min (f32x4.max (local.get $v01) (local.get $b0)) (local.get $b1)))
        (local.set $v10 (f32x4.min (f32x4.max (local.get $v10) (local.get $b0)) (local.get $b1)))
        (local.set $v11 (f32x4.min (f32x4.max (local.get $v11) (local.get $b0)) (local.get $b1)))
        (local.set $v20 (f32x4.min (f32x4.max (local.get $v20) (local.get $b0)) (local.get $b1)))
        (local.set $v21 (f32x4.min (f32x4.max (local.get $v21) (local.get $b0)) (local.get $b1)))
        (local.set $v30 (f32x4.min (f32x4.max (local.get $v30) (local.get $b0)) (local.get $b1)))
        (local.set $v31 (f32x4.min (f32x4.max (local.get $v31) (local.get $b0)) (local.get $b1)))))
    (v128.store offset=0 (local.get $c) (local.get $v00))
    (v128.store offset=16 (local.get $c) (local.get $v01))
    (v128.store offset=0 (local.get $c1) (local.get $v10))
    (v128.store offset=16 (local.get $c1) (local.get $v11))
    (v128.store offset=0 (local.get $c2) (local.get $v20))
    (v128.store offset=16 (local.get $c2) (local.get $v21))
    (v128.store offset=0 (local.get $c3) (local.get $v30))
    (v128.store offset=16 (local.get $c3) (local.get $v31)))

  ;; ---------------------------------------------------------------------------------------
  ;; Epilogue: bias and clamp on a rows x cols tile of C (row stride ldc bytes)
  ;; ---------------------------------------------------------------------------------------
  (func $epilogue (param $c i32) (param $ldc i32) (param $rows i32) (param $cols i32)
    (param $bias i32) (param $biasMode i32) (param $act i32) (param $lo f32) (param $hi f32) (param $res i32)
    (local $r i32) (local $col i32) (local $row i32) (local $at i32) (local $v f32) (local $rrow i32)
    (local $v0 v128) (local $v1 v128) (local $b0 v128) (local $b1 v128) (local $vlo v128) (local $vhi v128)
    (local.set $vlo (f32x4.splat (local.get $lo)))
    (local.set $vhi (f32x4.splat (local.get $hi)))
    (if (i32.and (i32.eq (local.get $biasMode) (i32.const 2)) (i32.eq (local.get $cols) (i32.const 8)))
      (then
        (local.set $b0 (v128.load offset=0 (local.get $bias)))
        (local.set $b1 (v128.load offset=16 (local.get $bias)))))
    (local.set $r (i32.const 0))
    (loop $rows_loop
      (local.set $row (i32.add (local.get $c) (i32.mul (local.get $r) (local.get $ldc))))
      (local.set $rrow (i32.add (local.get $res) (i32.mul (local.get $r) (local.get $ldc))))
      (if (i32.eq (local.get $cols) (i32.const 8))
        (then
          (local.set $v0 (v128.load offset=0 (local.get $row)))
          (local.set $v1 (v128.load offset=16 (local.get $row)))
          (if (i32.eq (local.get $biasMode) (i32.const 1))
            (then
              (local.set $b0 (v128.load32_splat (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
              (local.set $v0 (f32x4.add (local.get $v0) (local.get $b0)))
              (local.set $v1 (f32x4.add (local.get $v1) (local.get $b0)))))
          (if (i32.eq (local.get $biasMode) (i32.const 2))
            (then
              (local.set $v0 (f32x4.add (local.get $v0) (local.get $b0)))
              (local.set $v1 (f32x4.add (local.get $v1) (local.get $b1)))))
          (if (local.get $res)
            (then
              (local.set $v0 (f32x4.add (local.get $v0) (v128.load offset=0 (local.get $rrow))))
              (local.set $v1 (f32x4.add (local.get $v1) (v128.load offset=16 (local.get $rrow))))))
          (if (local.get $act)
            (then
              (local.set $v0 (f32x4.min (f32x4.max (local.get $v0) (local.get $vlo)) (local.get $vhi)))
              (local.set $v1 (f32x4.min (f32x4.max (local.get $v1) (local.get $vlo)) (local.get $vhi)))))
          (v128.store offset=0 (local.get $row) (local.get $v0))
          (v128.store offset=16 (local.get $row) (local.get $v1)))
        (else
          (local.set $col (i32.const 0))
          (loop $col_loop
            (local.set $at (i32.add (local.get $row) (i32.shl (local.get $col) (i32.const 2))))
            (local.set $v (f32.load (local.get $at)))
            (if (i32.eq (local.get $biasMode) (i32.const 1))
              (then (local.set $v (f32.add (local.get $v) (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2))))))))
            (if (i32.eq (local.get $biasMode) (i32.const 2))
              (then (local.set $v (f32.add (local.get $v) (f32.load (i32.add (local.get $bias) (i32.shl (local.get $col) (i32.const 2))))))))
            (if (local.get $res)
              (then (local.set $v (f32.add (local.get $v) (f32.load (i32.add (local.get $rrow) (i32.shl (local.get $col) (i32.const 2))))))))
            (if (local.get $act)
              (then (local.set $v (f32.min (f32.max (local.get $v) (local.get $lo)) (local.get $hi)))))
            (f32.store (local.get $at) (local.get $v))
            (local.set $col (i32.add (local.get $col) (i32.const 1)))
            (br_if $col_loop (i32.lt_u (local.get $col) (local.get $cols))))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $rows_loop (i32.lt_u (local.get $r) (local.get $rows)))))

  ;; ---------------------------------------------------------------------------------------
  ;; Implicit GEMM: a B panel of 8 output positions gathered from a convolution's input
  ;; ---------------------------------------------------------------------------------------

;; dst[kk*8 + c] = x[ch, oh(j+c)*SH - PH + kh*DH, ow(j+c)*SW - PW + kw*DW] for kk = (ch, kh, kw),
  ;; 0 in the padding and for c >= cols. `tmp` holds 16 i32: each column's first input row and
  ;; column (a column past `cols` gets a row of -2^30, so it always reads as padding).
  ;; For each (kh, kw) the 8 columns' offsets into a plane and their in-plane mask are computed
  ;; once, as two i32x4 each, and serve every channel: when all 8 are inside and consecutive
  ;; (stride 1) or every other float (stride 2), a channel's row is one or two vector loads;
  ;; otherwise 8 lane loads (an outside column loads the plane's first float) and an AND with
  ;; the mask, with no branch per element.
  (func $packConv (param $d i32) (param $xoff i32) (param $j i32) (param $cols i32) (param $dst i32) (param $tmp i32)
    (local $x i32) (local $C i32) (local $H i32) (local $W i32) (local $OW i32)
    (local $KH i32) (local $KW i32) (local $SH i32) (local $SW i32) (local $PH i32) (local $PW i32) (local $DH i32) (local $DW i32)
    (local $c i32) (local $pos i32) (local $ch i32) (local $kh i32) (local $kw i32)
    (local $plane i32) (local $planeBytes i32) (local $mode i32) (local $first i32) (local $out i32) (local $step i32)
    (local $h0 v128) (local $h1 v128) (local $w0 v128) (local $w1 v128)
    (local $ih0 v128) (local $ih1 v128) (local $iw0 v128) (local $iw1 v128)
    (local $m0 v128) (local $m1 v128) (local $o0 v128) (local $o1 v128) (local $v0 v128) (local $v1 v128)
    (local $vH v128) (local $vW v128)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $a4 i32) (local $a5 i32) (local $a6 i32) (local $a7 i32)
    (local.set $x (i32.add (i32.load offset=0 (local.get $d)) (local.get $xoff)))
    (local.set $C (i32.load offset=4 (local.get $d)))
    (local.set $H (i32.load offset=8 (local.get $d)))
    (local.set $W (i32.load offset=12 (local.get $d)))
    (local.set $OW (i32.load offset=20 (local.get $d)))
    (local.set $KH (i32.load offset=24 (local.get $d)))
    (local.set $KW (i32.load offset=28 (local.get $d)))
    (local.set $SH (i32.load offset=32 (local.get $d)))
    (local.set $SW (i32.load offset=36 (local.get $d)))
    (local.set $PH (i32.load offset=40 (local.get $d)))
    (local.set $PW (i32.load offset=44 (local.get $d)))
    (local.set $DH (i32.load offset=48 (local.get $d)))
    (local.set $DW (i32.load offset=52 (local.get $d)))
    (local.set $c (i32.const 0))
    (loop $cols_loop
      (local.set $pos (i32.add (local.get $j) (local.get $c)))
      (if (i32.lt_u (local.get $c) (local.get $cols))
        (then
          (i32.store (i32.add (local.get $tmp) (i32.shl (local.get $c) (i32.const 2)))
            (i32.sub (i32.mul (i32.div_u (local.get $pos) (local.get $OW)) (local.get $SH)) (local.get $PH)))
          (i32.store offset=32 (i32.add (local.get $tmp) (i32.shl (local.get $c) (i32.const 2)))
            (i32.sub (i32.mul (i32.rem_u (local.get $pos) (local.get $OW)) (local.get $SW)) (local.get $PW))))
        (else
          (i32.store (i32.add (local.get $tmp) (i32.shl (local.get $c) (i32.const 2))) (i32.const -1073741824))
          (i32.store offset=32 (i32.add (local.get $tmp) (i32.shl (local.get $c) (i32.const 2))) (i32.const 0))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br_if $cols_loop (i32.lt_u (local.get $c) (i32.const 8))))
    (local.set $h0 (v128.load offset=0 (local.get $tmp)))
    (local.set $h1 (v128.load offset=16 (local.get $tmp)))
    (local.set $w0 (v128.load offset=32 (local.get $tmp)))
    (local.set $w1 (v128.load offset=48 (local.get $tmp)))
    (local.set $vH (i32x4.splat (local.get $H)))
    (local.set $vW (i32x4.splat (local.get $W)))
    (local.set $planeBytes (i32.shl (i32.mul (local.get $H) (local.get $W)) (i32.const 2)))
    ;; one channel further along K is KH*KW panel rows of 32 bytes
    (local.set $step (i32.shl (i32.mul (local.get $KH) (local.get $KW)) (i32.const 5)))
    (local.set $kh (i32.const 0))
    (loop $kh_loop
      (local.set $ih0 (i32x4.add (local.get $h0) (i32x4.splat (i32.mul (local.get $kh) (local.get $DH)))))
      (local.set $ih1 (i32x4.add (local.get $h1) (i32x4.splat (i32.mul (local.get $kh) (local.get $DH)))))
      (local.set $kw (i32.const 0))
      (loop $kw_loop
        (local.set $iw0 (i32x4.add (local.get $w0) (i32x4.splat (i32.mul (local.get $kw) (local.get $DW)))))
        (local.set $iw1 (i32x4.add (local.get $w1) (i32x4.splat (i32.mul (local.get $kw) (local.get $DW)))))
        (local.set $m0 (v128.and (i32x4.lt_u (local.get $ih0) (local.get $vH)) (i32x4.lt_u (local.get $iw0) (local.get $vW))))
        (local.set $m1 (v128.and (i32x4.lt_u (local.get $ih1) (local.get $vH)) (i32x4.lt_u (local.get $iw1) (local.get $vW))))
        ;; byte offsets in a plane, 0 for a column outside it
        (local.set $o0 (i32x4.shl (v128.and (local.get $m0) (i32x4.add (i32x4.mul (local.get $ih0) (local.get $vW)) (local.get $iw0))) (i32.const 2)))
        (local.set $o1 (i32x4.shl (v128.and (local.get $m1) (i32x4.add (i32x4.mul (local.get $ih1) (local.get $vW)) (local.get $iw1))) (i32.const 2)))
        (local.set $first (i32x4.extract_lane 0 (local.get $o0)))
        (local.set $mode (i32.const 0))
        (if (i32.and (i32x4.all_true (local.get $m0)) (i32x4.all_true (local.get $m1)))
          (then
            (if (i32.and
                  (i32x4.all_true (i32x4.eq (local.get $o0) (i32x4.add (i32x4.splat (local.get $first)) (v128.const i32x4 0 4 8 12))))
                  (i32x4.all_true (i32x4.eq (local.get $o1) (i32x4.add (i32x4.splat (local.get $first)) (v128.const i32x4 16 20 24 28)))))
              (then (local.set $mode (i32.const 1))))
            (if (i32.and
                  (i32x4.all_true (i32x4.eq (local.get $o0) (i32x4.add (i32x4.splat (local.get $first)) (v128.const i32x4 0 8 16 24))))
                  (i32x4.all_true (i32x4.eq (local.get $o1) (i32x4.add (i32x4.splat (local.get $first)) (v128.const i32x4 32 40 48 56)))))
              (then (local.set $mode (i32.const 2))))))
        (local.set $a0 (i32x4.extract_lane 0 (local.get $o0)))
        (local.set $a1 (i32x4.extract_lane 1 (local.get $o0)))
        (local.set $a2 (i32x4.extract_lane 2 (local.get $o0)))
        (local.set $a3 (i32x4.extract_lane 3 (local.get $o0)))
        (local.set $a4 (i32x4.extract_lane 0 (local.get $o1)))
        (local.set $a5 (i32x4.extract_lane 1 (local.get $o1)))
        (local.set $a6 (i32x4.extract_lane 2 (local.get $o1)))
        (local.set $a7 (i32x4.extract_lane 3 (local.get $o1)))
        (local.set $out (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $kh) (local.get $KW)) (local.get $kw)) (i32.const 5))))
        (local.set $plane (local.get $x))
        (local.set $ch (i32.const 0))
        (if (i32.eq (local.get $mode) (i32.const 1))
          (then
            (loop $ch1
              (v128.store offset=0 (local.get $out) (v128.load offset=0 (i32.add (local.get $plane) (local.get $first))))
              (v128.store offset=16 (local.get $out) (v128.load offset=16 (i32.add (local.get $plane) (local.get $first))))
              (local.set $plane (i32.add (local.get $plane) (local.get $planeBytes)))
              (local.set $out (i32.add (local.get $out) (local.get $step)))
              (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
              (br_if $ch1 (i32.lt_u (local.get $ch) (local.get $C)))))
          (else
            (if (i32.eq (local.get $mode) (i32.const 2))
              (then
                ;; floats 0, 2, 4, ... of 16 (the 16th may lie past the row: put() leaves slack)
                (loop $ch2
                  (v128.store offset=0 (local.get $out)
                    (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                      (v128.load offset=0 (i32.add (local.get $plane) (local.get $first)))
                      (v128.load offset=16 (i32.add (local.get $plane) (local.get $first)))))
                  (v128.store offset=16 (local.get $out)
                    (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                      (v128.load offset=32 (i32.add (local.get $plane) (local.get $first)))
                      (v128.load offset=48 (i32.add (local.get $plane) (local.get $first)))))
                  (local.set $plane (i32.add (local.get $plane) (local.get $planeBytes)))
                  (local.set $out (i32.add (local.get $out) (local.get $step)))
                  (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
                  (br_if $ch2 (i32.lt_u (local.get $ch) (local.get $C)))))
              (else
                (loop $chg
                  (local.set $v0 (v128.load32_splat (i32.add (local.get $plane) (local.get $a0))))
                  (local.set $v0 (v128.load32_lane 1 (i32.add (local.get $plane) (local.get $a1)) (local.get $v0)))
                  (local.set $v0 (v128.load32_lane 2 (i32.add (local.get $plane) (local.get $a2)) (local.get $v0)))
                  (local.set $v0 (v128.load32_lane 3 (i32.add (local.get $plane) (local.get $a3)) (local.get $v0)))
                  (local.set $v1 (v128.load32_splat (i32.add (local.get $plane) (local.get $a4))))
                  (local.set $v1 (v128.load32_lane 1 (i32.add (local.get $plane) (local.get $a5)) (local.get $v1)))
                  (local.set $v1 (v128.load32_lane 2 (i32.add (local.get $plane) (local.get $a6)) (local.get $v1)))
                  (local.set $v1 (v128.load32_lane 3 (i32.add (local.get $plane) (local.get $a7)) (local.get $v1)))
                  (v128.store offset=0 (local.get $out) (v128.and (local.get $v0) (local.get $m0)))
                  (v128.store offset=16 (local.get $out) (v128.and (local.get $v1) (local.get $m1)))
                  (local.set $plane (i32.add (local.get $plane) (local.get $planeBytes)))
                  (local.set $out (i32.add (local.get $out) (local.get $step)))
                  (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
                  (br_if $chg (i32.lt_u (local.get $ch) (local.get $C))))))))
        (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
        (br_if $kw_loop (i32.lt_u (local.get $kw) (local.get $KW))))
      (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
      (br_if $kh_loop (i32.lt_u (local.get $kh) (local.get $KH)))))

  ;; ---------------------------------------------------------------------------------------
  ;; Packing constants once
  ;; ---------------------------------------------------------------------------------------

  ;; A[m,k] (row stride lda) -> blocks of 4 rows at dst (block i at dst + i*k*4 bytes).
  (func (export "pack_a") (param $a i32) (param $lda i32) (param $m i32) (param $k i32) (param $dst i32)
    (local $i i32) (local $mr i32)
    (local.set $i (i32.const 0))
    (loop $next
      (local.set $mr (i32.sub (local.get $m) (local.get $i)))
      (if (i32.gt_u (local.get $mr) (i32.const 4)) (then (local.set $mr (i32.const 4))))
      (if (i32.and (i32.eq (local.get $mr) (i32.const 4)) (i32.ge_u (local.get $k) (i32.const 4)))
        (then
          (call $packRows4
            (i32.add (local.get $a) (i32.shl (i32.mul (local.get $i) (local.get $lda)) (i32.const 2)))
            (local.get $lda) (local.get $k)
            (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $i) (local.get $k)) (i32.const 2)))))
        (else
          (call $packRows
            (i32.add (local.get $a) (i32.shl (i32.mul (local.get $i) (local.get $lda)) (i32.const 2)))
            (local.get $lda) (local.get $mr) (local.get $k) (i32.const 4)
            (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $i) (local.get $k)) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $m)))))

  ;; B as [k,n] (trans = 0) or [n,k] (trans = 1), row stride ldb, -> panels of 8 columns at dst
  ;; (panel of column j at dst + j*k*4 bytes).
  (func $packB (export "pack_b") (param $b i32) (param $ldb i32) (param $trans i32) (param $j0 i32) (param $j1 i32) (param $k i32) (param $dst i32)
    (local $j i32) (local $nr i32) (local $src i32) (local $to i32)
    (local.set $j (local.get $j0))
    (loop $next
      (local.set $nr (i32.sub (local.get $j1) (local.get $j)))
      (if (i32.gt_u (local.get $nr) (i32.const 8)) (then (local.set $nr (i32.const 8))))
      (local.set $to (i32.add (local.get $dst) (i32.shl (i32.mul (i32.sub (local.get $j) (local.get $j0)) (local.get $k)) (i32.const 2))))
      (if (local.get $trans)
        (then
          (local.set $src (i32.add (local.get $b) (i32.shl (i32.mul (local.get $j) (local.get $ldb)) (i32.const 2))))
          (if (i32.and (i32.eq (local.get $nr) (i32.const 8)) (i32.ge_u (local.get $k) (i32.const 4)))
            (then (call $packRows8 (local.get $src) (local.get $ldb) (local.get $k) (local.get $to)))
            (else (call $packRows (local.get $src) (local.get $ldb) (local.get $nr) (local.get $k) (i32.const 8) (local.get $to)))))
        (else
          (call $packCols8 (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
            (local.get $ldb) (local.get $nr) (local.get $k) (local.get $to))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br_if $next (i32.lt_u (local.get $j) (local.get $j1)))))

;; ---------------------------------------------------------------------------------------
  ;; 2-D MaxPool (ONNX semantics: the max over the window's cells inside the input; NaN wins)
  ;; ---------------------------------------------------------------------------------------

  ;; Descriptor (i32 words at `d`): 0 x  1 planes  2 H  3 W  4 OH  5 OW  6 KH  7 KW  8 SH  9 SW
  ;; 10 DH  11 DW  12 PH  13 PW  14 out  15 tmp (a row of at least (OW+3)*SW + (KW-1)*DW + 8
  ;; floats)  16 tmp length in floats.  `out` needs 16 bytes of slack past OH*OW*planes floats.
  ;; Per output row: the max over the window's valid input rows, column by column, into tmp at
  ;; offset PW (4 columns per f32x4.max; tmp's other cells are -inf, the padding); then each
  ;; output is the max of its KW cells of tmp, 4 outputs at a time (strides 1 and 2 load them
  ;; as vectors, other strides lane by lane). f32x4.max is branch-free, unlike a JS compare on
  ;; random data, and propagates NaN as the JS loop did. A 4-output group past the row's end
  ;; writes into the next row's place, which that row then overwrites (hence the slack).
  (func (export "maxpool2d") (param $d i32)
    (local $x i32) (local $planes i32) (local $H i32) (local $W i32) (local $OH i32) (local $OW i32)
    (local $KH i32) (local $KW i32) (local $SH i32) (local $SW i32) (local $DH i32) (local $DW i32)
    (local $PH i32) (local $PW i32) (local $out i32) (local $tmp i32) (local $tlen i32)
    (local $plane i32) (local $y i32) (local $i i32) (local $ih i32) (local $first i32) (local $src i32)
    (local $col i32) (local $row i32) (local $xo i32) (local $j i32) (local $at i32) (local $dst i32)
    (local $v v128) (local $w v128) (local $ninf v128)
    (local.set $x (i32.load offset=0 (local.get $d)))
    (local.set $planes (i32.load offset=4 (local.get $d)))
    (local.set $H (i32.load offset=8 (local.get $d)))
    (local.set $W (i32.load offset=12 (local.get $d)))
    (local.set $OH (i32.load offset=16 (local.get $d)))
    (local.set $OW (i32.load offset=20 (local.get $d)))
    (local.set $KH (i32.load offset=24 (local.get $d)))
    (local.set $KW (i32.load offset=28 (local.get $d)))
    (local.set $SH (i32.load offset=32 (local.get $d)))
    (local.set $SW (i32.load offset=36 (local.get $d)))
    (local.set $DH (i32.load offset=40 (local.get $d)))
    (local.set $DW (i32.load offset=44 (local.get $d)))
    (local.set $PH (i32.load offset=48 (local.get $d)))
    (local.set $PW (i32.load offset=52 (local.get $d)))
    (local.set $out (i32.load offset=56 (local.get $d)))
    (local.set $tmp (i32.load offset=60 (local.get $d)))
    (local.set $tlen (i32.load offset=64 (local.get $d)))
    (local.set $ninf (f32x4.splat (f32.const -inf)))
    (if (i32.or (i32.eqz (local.get $planes)) (i32.or (i32.eqz (local.get $OH)) (i32.eqz (local.get $OW)))) (then (return)))
    (local.set $dst (local.get $out))
    (local.set $plane (i32.const 0))
    (loop $plane_loop
      (local.set $y (i32.const 0))
      (loop $y_loop
        ;; tmp = -inf everywhere, then the max over the valid rows at offset PW
        (local.set $col (i32.const 0))
        (loop $fill
          (v128.store (i32.add (local.get $tmp) (i32.shl (local.get $col) (i32.const 2))) (local.get $ninf))
          (local.set $col (i32.add (local.get $col) (i32.const 4)))
          (br_if $fill (i32.lt_u (local.get $col) (local.get $tlen))))
        (local.set $first (i32.const 1))
        (local.set $i (i32.const 0))
        (loop $i_loop
          (local.set $ih (i32.add (i32.sub (i32.mul (local.get $y) (local.get $SH)) (local.get $PH)) (i32.mul (local.get $i) (local.get $DH))))
          (if (i32.lt_u (local.get $ih) (local.get $H))
            (then
              (local.set $src (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $plane) (i32.mul (local.get $H) (local.get $W))) (i32.mul (local.get $ih) (local.get $W))) (i32.const 2))))
              (local.set $row (i32.add (local.get $tmp) (i32.shl (local.get $PW) (i32.const 2))))
              (local.set $col (i32.const 0))
              ;; whole groups of 4 columns; the last partial group column by column, so tmp past W stays -inf
              (block $vec_done
                (br_if $vec_done (i32.lt_s (local.get $W) (i32.const 4)))
                (loop $vec
                  (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $col) (i32.const 2)))))
                  (if (i32.eqz (local.get $first))
                    (then (local.set $v (f32x4.max (local.get $v) (v128.load (i32.add (local.get $row) (i32.shl (local.get $col) (i32.const 2))))))))
                  (v128.store (i32.add (local.get $row) (i32.shl (local.get $col) (i32.const 2))) (local.get $v))
                  (local.set $col (i32.add (local.get $col) (i32.const 4)))
                  (br_if $vec (i32.le_s (i32.add (local.get $col) (i32.const 4)) (local.get $W)))))
              (block $tail_done
                (br_if $tail_done (i32.ge_s (local.get $col) (local.get $W)))
                (loop $tail
                  (local.set $at (i32.add (local.get $row) (i32.shl (local.get $col) (i32.const 2))))
                  (f32.store (local.get $at)
                    (if (result f32) (local.get $first)
                      (then (f32.load (i32.add (local.get $src) (i32.shl (local.get $col) (i32.const 2)))))
                      (else (f32.max (f32.load (local.get $at)) (f32.load (i32.add (local.get $src) (i32.shl (local.get $col) (i32.const 2))))))))
                  (local.set $col (i32.add (local.get $col) (i32.const 1)))
                  (br_if $tail (i32.lt_s (local.get $col) (local.get $W)))))
              (local.set $first (i32.const 0))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $i_loop (i32.lt_u (local.get $i) (local.get $KH))))
        ;; each output: the max of its KW cells of tmp, 4 outputs at a time
        (local.set $xo (i32.const 0))
        (loop $x_loop
          (local.set $v (local.get $ninf))
          (local.set $j (i32.const 0))
          (loop $j_loop
            (local.set $at (i32.add (local.get $tmp) (i32.shl (i32.add (i32.mul (local.get $xo) (local.get $SW)) (i32.mul (local.get $j) (local.get $DW))) (i32.const 2))))
            (if (i32.eq (local.get $SW) (i32.const 1))
              (then (local.set $w (v128.load (local.get $at))))
              (else
                (if (i32.eq (local.get $SW) (i32.const 2))
                  (then (local.set $w (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (v128.load (local.get $at)) (v128.load offset=16 (local.get $at)))))
                  (else
                    (local.set $w (f32x4.splat (f32.load (local.get $at))))
                    (local.set $at (i32.add (local.get $at) (i32.shl (local.get $SW) (i32.const 2))))
                    (local.set $w (f32x4.replace_lane 1 (local.get $w) (f32.load (local.get $at))))
                    (local.set $at (i32.add (local.get $at) (i32.shl (local.get $SW) (i32.const 2))))
                    (local.set $w (f32x4.replace_lane 2 (local.get $w) (f32.load (local.get $at))))
                    (local.set $at (i32.add (local.get $at) (i32.shl (local.get $SW) (i32.const 2))))
                    (local.set $w (f32x4.replace_lane 3 (local.get $w) (f32.load (local.get $at))))))))
            (local.set $v (f32x4.max (local.get $v) (local.get $w)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $j_loop (i32.lt_u (local.get $j) (local.get $KW))))
          (v128.store (i32.add (local.get $dst) (i32.shl (local.get $xo) (i32.const 2))) (local.get $v))
          (local.set $xo (i32.add (local.get $xo) (i32.const 4)))
          (br_if $x_loop (i32.lt_u (local.get $xo) (local.get $OW))))
        (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $OW) (i32.const 2))))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br_if $y_loop (i32.lt_u (local.get $y) (local.get $OH))))
      (local.set $plane (i32.add (local.get $plane) (i32.const 1)))
      (br_if $plane_loop (i32.lt_u (local.get $plane) (local.get $planes)))))

  ;; ---------------------------------------------------------------------------------------
  ;; GELU, torch.onnx's erf chain Div(x, d) -> Erf -> Add(one) -> Mul(x) [-> Mul(scale)], four
  ;; lanes at a time in float32, bit for bit what fuse.ts's geluLoop computes (each f32x4 op
  ;; rounds as JS's Math.fround of the double result does; no FMA, so the relaxed module agrees).
  ;; The erf is Eigen's float32 rational approximation (also XLA's and TVM's): x clamped to
  ;; [-4, 4], erf = x·P(x²)/Q(x²) (P of degree 6, Q of degree 4, Horner), the result clamped to
  ;; [-1, 1] (P/Q passes 1 by an ulp near 4) and x·2/√π below 1e-4 (where x·P underflows for
  ;; subnormal x). Within 5e-7 relative of erf (kernels/erf.ts tests it against the float64 erf);
  ;; NaN stays NaN (the clamps' comparisons are false for it). `table` is unused (the pool's job words keep
  ;; their layout). `x` needs 16 bytes of slack past n floats, and up to 16 bytes past `out`'s n
  ;; floats are written.
  ;; ---------------------------------------------------------------------------------------
  (func (export "gelu") (param $x i32) (param $out i32) (param $n i32) (param $table i32)
    (param $d f32) (param $one f32) (param $scale f32) (param $scaled i32)
    (local $i i32) (local $v v128) (local $r v128)
    (local $vd v128) (local $vone v128) (local $vscale v128)
    (local $t v128) (local $c v128) (local $x2 v128) (local $p v128) (local $q v128) (local $e v128)
    (local.set $vd (f32x4.splat (local.get $d)))
    (local.set $vone (f32x4.splat (local.get $one)))
    (local.set $vscale (f32x4.splat (local.get $scale)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $step
        (local.set $v (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
        ;; the erf (written out here: V8 does not inline wasm calls, and the loop with the call took ~1.3x as long, measured)
        (local.set $t (f32x4.div (local.get $v) (local.get $vd)))
        ;; pmin/pmax (one minps/maxps each; min/max handle NaN and -0 in several): 4 < x ? 4 : x, then c < -4 ? -4 : c, so NaN passes
        (local.set $c (f32x4.pmax (f32x4.pmin (local.get $t) (f32x4.splat (f32.const 4))) (f32x4.splat (f32.const -4))))
        (local.set $x2 (f32x4.mul (local.get $c) (local.get $c)))
        (local.set $p (f32x4.add (f32x4.mul (local.get $x2) (f32x4.splat (f32.const -2.72614225801306e-10))) (f32x4.splat (f32.const 2.77068142495902e-08))))
        (local.set $p (f32x4.add (f32x4.mul (local.get $x2) (local.get $p)) (f32x4.splat (f32.const -2.10102402082508e-06))))
        (local.set $p (f32x4.add (f32x4.mul (local.get $x2) (local.get $p)) (f32x4.splat (f32.const -5.69250639462346e-05))))
        (local.set $p (f32x4.add (f32x4.mul (local.get $x2) (local.get $p)) (f32x4.splat (f32.const -7.34990630326855e-04))))
        (local.set $p (f32x4.add (f32x4.mul (local.get $x2) (local.get $p)) (f32x4.splat (f32.const -2.95459980854025e-03))))
        (local.set $p (f32x4.add (f32x4.mul (local.get $x2) (local.get $p)) (f32x4.splat (f32.const -1.60960333262415e-02))))
        (local.set $p (f32x4.mul (local.get $c) (local.get $p)))
        (local.set $q (f32x4.add (f32x4.mul (local.get $x2) (f32x4.splat (f32.const -1.45660718464996e-05))) (f32x4.splat (f32.const -2.13374055278905e-04))))
        (local.set $q (f32x4.add (f32x4.mul (local.get $x2) (local.get $q)) (f32x4.splat (f32.const -1.68282697438203e-03))))
        (local.set $q (f32x4.add (f32x4.mul (local.get $x2) (local.get $q)) (f32x4.splat (f32.const -7.37332916720468e-03))))
        (local.set $q (f32x4.add (f32x4.mul (local.get $x2) (local.get $q)) (f32x4.splat (f32.const -1.42647390514189e-02))))
        (local.set $r (f32x4.pmax (f32x4.pmin (f32x4.div (local.get $p) (local.get $q)) (f32x4.splat (f32.const 1))) (f32x4.splat (f32.const -1))))
        (local.set $e (v128.bitselect
        (f32x4.mul (local.get $t) (f32x4.splat (f32.const 1.1283791670955126)))
        (local.get $r)
        (f32x4.lt (f32x4.abs (local.get $t)) (f32x4.splat (f32.const 1e-4)))))
        (local.set $r (f32x4.mul (local.get $v) (f32x4.add (local.get $e) (local.get $vone))))
        (if (local.get $scaled) (then (local.set $r (f32x4.mul (local.get $r) (local.get $vscale)))))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $r))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br_if $step (i32.lt_u (local.get $i) (local.get $n))))))

;; ---------------------------------------------------------------------------------------
  ;; LayerNormalization over rows of `len` float32 (ONNX opset 17, the last axes), bit for bit
  ;; norm.ts's normalizeRows: the mean and the variance summed in float64 in order (scalar adds:
  ;; a vector sum would round differently), inv = 1/sqrt(var + eps), then each element
  ;; ((x - mean) * inv) * scale + bias in float64, two lanes at a time (the same operations per
  ;; lane), rounded to float32. `bias` 0: none. Reads and writes exactly rows * len floats.
  ;; ---------------------------------------------------------------------------------------
  (func (export "layernorm") (param $x i32) (param $out i32) (param $rows i32) (param $len i32) (param $scale i32) (param $bias i32) (param $eps f64)
    (local $row i32) (local $src i32) (local $dst i32) (local $j i32) (local $sum f64) (local $d f64) (local $mean f64) (local $inv f64)
    (local $vmean v128) (local $vinv v128) (local $y v128) (local $s f64)
    (block $done
      (br_if $done (i32.or (i32.eqz (local.get $rows)) (i32.eqz (local.get $len))))
      (loop $row_loop
        (local.set $src (i32.add (local.get $x) (i32.shl (i32.mul (local.get $row) (local.get $len)) (i32.const 2))))
        (local.set $dst (i32.add (local.get $out) (i32.shl (i32.mul (local.get $row) (local.get $len)) (i32.const 2))))
        (local.set $sum (f64.const 0))
        (local.set $j (i32.const 0))
        (loop $mean_loop
          (local.set $sum (f64.add (local.get $sum) (f64.promote_f32 (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br_if $mean_loop (i32.lt_u (local.get $j) (local.get $len))))
        (local.set $mean (f64.div (local.get $sum) (f64.convert_i32_u (local.get $len))))
        (local.set $sum (f64.const 0))
        (local.set $j (i32.const 0))
        (loop $var_loop
          (local.set $d (f64.sub (f64.promote_f32 (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))) (local.get $mean)))
          (local.set $sum (f64.add (local.get $sum) (f64.mul (local.get $d) (local.get $d))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br_if $var_loop (i32.lt_u (local.get $j) (local.get $len))))
        (local.set $inv (f64.div (f64.const 1)
          (f64.sqrt (f64.add (f64.div (local.get $sum) (f64.convert_i32_u (local.get $len))) (local.get $eps)))))
        (local.set $vmean (f64x2.splat (local.get $mean)))
        (local.set $vinv (f64x2.splat (local.get $inv)))
        (local.set $j (i32.const 0))
        (block $pairs_done
          (br_if $pairs_done (i32.lt_u (local.get $len) (i32.const 2)))
          (loop $pairs
            (local.set $y (f64x2.mul
              (f64x2.mul
                (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))) (local.get $vmean))
                (local.get $vinv))
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $scale) (i32.shl (local.get $j) (i32.const 2)))))))
            (if (local.get $bias)
              (then (local.set $y (f64x2.add (local.get $y)
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))))))
            (v128.store64_lane 0 (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2))) (f32x4.demote_f64x2_zero (local.get $y)))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))
            (br_if $pairs (i32.le_u (i32.add (local.get $j) (i32.const 2)) (local.get $len)))))
        (if (i32.lt_u (local.get $j) (local.get $len))
          (then
            (local.set $s (f64.mul
              (f64.mul (f64.sub (f64.promote_f32 (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))) (local.get $mean)) (local.get $inv))
              (f64.promote_f32 (f32.load (i32.add (local.get $scale) (i32.shl (local.get $j) (i32.const 2)))))))
            (if (local.get $bias)
              (then (local.set $s (f64.add (local.get $s) (f64.promote_f32 (f32.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))))))
            (f32.store (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2))) (f32.demote_f64 (local.get $s)))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br_if $row_loop (i32.lt_u (local.get $row) (local.get $rows))))))

  ;; ---------------------------------------------------------------------------------------
  ;; Attention scores before their Softmax: x = x * s + mask, in place over `rows` rows of `len`
  ;; floats (row stride `ld` floats), row r adding mask row r % mrows (mask rows of `len`,
  ;; packed). f32x4 mul then add, each rounded as the separate Mul and Add ops round.
  ;; ---------------------------------------------------------------------------------------
  (func (export "scale_add") (param $x i32) (param $rows i32) (param $len i32) (param $ld i32) (param $s f32) (param $mask i32) (param $mrows i32)
    (local $row i32) (local $src i32) (local $m i32) (local $j i32) (local $vs v128) (local $at i32)
    (local.set $vs (f32x4.splat (local.get $s)))
    (block $done
      (br_if $done (i32.or (i32.eqz (local.get $rows)) (i32.eqz (local.get $len))))
      (loop $row_loop
        (local.set $src (i32.add (local.get $x) (i32.shl (i32.mul (local.get $row) (local.get $ld)) (i32.const 2))))
        (local.set $m (i32.add (local.get $mask)
          (i32.shl (i32.mul (i32.rem_u (local.get $row) (local.get $mrows)) (local.get $len)) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $vec_done
          (br_if $vec_done (i32.lt_u (local.get $len) (i32.const 4)))
          (loop $vec
            (local.set $at (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))
            (v128.store (local.get $at) (f32x4.add (f32x4.mul (v128.load (local.get $at)) (local.get $vs))
              (v128.load (i32.add (local.get $m) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br_if $vec (i32.le_u (i32.add (local.get $j) (i32.const 4)) (local.get $len)))))
        (block $tail_done
          (br_if $tail_done (i32.ge_u (local.get $j) (local.get $len)))
          (loop $tail
            (local.set $at (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))
            (f32.store (local.get $at) (f32.add (f32.mul (f32.load (local.get $at)) (local.get $s))
              (f32.load (i32.add (local.get $m) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $tail (i32.lt_u (local.get $j) (local.get $len)))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br_if $row_loop (i32.lt_u (local.get $row) (local.get $rows))))))

  ;; ---------------------------------------------------------------------------------------
  ;; Softmax over the rows of a float32 matrix (ONNX opset 13+, the last axis), in float64 like
  ;; the JS kernel: e = exp(x - max), out = e / sum(e), rounded to float32. exp here: d = k ln2/64
  ;; + r (Cody-Waite, ln2/64 in a 24-bit high part and the rest), exp(d) = 2^(k/64) p(r), with
  ;; 2^(j/64) from `table` (64 doubles) and p the degree-5 Taylor polynomial (|r| <= ln2/128:
  ;; below 1e-16 truncation); measured within 3e-14 relative of Math.exp, so the float32 results
  ;; round alike but where a quotient lies within that of a rounding boundary. d below -708 gives
  ;; 0 (the float32 result is 0 either way); a NaN or +inf in a row makes the row NaN, as in JS.
  ;; ---------------------------------------------------------------------------------------
  ;; rows of `len` floats (row stride `ld` floats, ld >= len rounded up to 4) from x into out (same
  ;; layout); `tmp` holds a row of doubles (len rounded up to 2, + 2).
  (func (export "softmax") (param $x i32) (param $out i32) (param $rows i32) (param $len i32) (param $ld i32) (param $tmp i32) (param $table i32)
    (local $row i32) (local $src i32) (local $dst i32) (local $j i32) (local $m v128) (local $max f32) (local $vmax v128)
    (local $e v128) (local $sum f64) (local $vs v128) (local $v f32)
    ;; exp's (written out here: V8 does not inline wasm calls, and the call cost a third of the loop)
    (local $d v128) (local $k v128) (local $ki v128) (local $r v128) (local $p v128) (local $a0 i32) (local $a1 i32) (local $scale v128)
    (block $done
      (br_if $done (i32.or (i32.eqz (local.get $rows)) (i32.eqz (local.get $len))))
      (loop $row_loop
        (local.set $src (i32.add (local.get $x) (i32.shl (i32.mul (local.get $row) (local.get $ld)) (i32.const 2))))
        (local.set $dst (i32.add (local.get $out) (i32.shl (i32.mul (local.get $row) (local.get $ld)) (i32.const 2))))
        ;; the max (f32x4.max: a NaN makes it NaN, and then the whole row, as in JS)
        (local.set $m (f32x4.splat (f32.const -inf)))
        (local.set $j (i32.const 0))
        (block $vec_done
          (br_if $vec_done (i32.lt_u (local.get $len) (i32.const 4)))
          (loop $vec
            (local.set $m (f32x4.max (local.get $m) (v128.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br_if $vec (i32.le_u (i32.add (local.get $j) (i32.const 4)) (local.get $len)))))
        (local.set $max (f32.max (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
          (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
        (block $tail_done
          (br_if $tail_done (i32.ge_u (local.get $j) (local.get $len)))
          (loop $tail
            (local.set $max (f32.max (local.get $max) (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $tail (i32.lt_u (local.get $j) (local.get $len)))))
        (local.set $vmax (f64x2.splat (f64.promote_f32 (local.get $max))))
        ;; exps into tmp, two at a time, summed in order
        (local.set $sum (f64.const 0))
        (local.set $j (i32.const 0))
        (loop $exp_loop
          (local.set $d
            (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))) (local.get $vmax)))
          (local.set $k (f64x2.nearest (f64x2.mul (local.get $d) (f64x2.splat (f64.const 92.33248261689366)))))
          (local.set $r (f64x2.sub
            (f64x2.sub (local.get $d) (f64x2.mul (local.get $k) (f64x2.splat (f64.const 0.010830424726009369))))
            (f64x2.mul (local.get $k) (f64x2.splat (f64.const -2.976022379919119e-11)))))
          ;; p = 1 + r(1 + r(1/2 + r(1/6 + r(1/24 + r/120)))), Horner from the inside out
          (local.set $p (f64x2.add (f64x2.splat (f64.const 0.041666666666666664)) (f64x2.mul (local.get $r) (f64x2.splat (f64.const 0.008333333333333333)))))
          (local.set $p (f64x2.add (f64x2.splat (f64.const 0.16666666666666666)) (f64x2.mul (local.get $r) (local.get $p))))
          (local.set $p (f64x2.add (f64x2.splat (f64.const 0.5)) (f64x2.mul (local.get $r) (local.get $p))))
          (local.set $p (f64x2.add (f64x2.splat (f64.const 1)) (f64x2.mul (local.get $r) (local.get $p))))
          (local.set $p (f64x2.add (f64x2.splat (f64.const 1)) (f64x2.mul (local.get $r) (local.get $p))))
          ;; k >= -708 * 64/ln2 here (clamped), so 2^(k >> 6) is a normal double built from its exponent bits
          (local.set $ki (i32x4.trunc_sat_f64x2_s_zero (f64x2.max (local.get $k) (f64x2.splat (f64.const -65400)))))
          (local.set $a0 (i32.add (local.get $table) (i32.shl (i32.and (i32x4.extract_lane 0 (local.get $ki)) (i32.const 63)) (i32.const 3))))
          (local.set $a1 (i32.add (local.get $table) (i32.shl (i32.and (i32x4.extract_lane 1 (local.get $ki)) (i32.const 63)) (i32.const 3))))
          (local.set $scale (i64x2.shl (i64x2.extend_low_i32x4_s (i32x4.add (i32x4.shr_s (local.get $ki) (i32.const 6)) (v128.const i32x4 1023 1023 1023 1023))) (i32.const 52)))
          (local.set $p (f64x2.mul (local.get $scale)
            (f64x2.mul (v128.load64_lane offset=0 1 (local.get $a1) (v128.load64_splat offset=0 (local.get $a0))) (local.get $p))))
          ;; below -708: 0; NaN stays NaN
          (local.set $e
          (v128.bitselect (f64x2.splat (f64.const 0)) (local.get $p) (f64x2.lt (local.get $d) (f64x2.splat (f64.const -708)))))
          (v128.store (i32.add (local.get $tmp) (i32.shl (local.get $j) (i32.const 3))) (local.get $e))
          (local.set $sum (f64.add (local.get $sum) (f64x2.extract_lane 0 (local.get $e))))
          (if (i32.lt_u (i32.add (local.get $j) (i32.const 1)) (local.get $len))
            (then (local.set $sum (f64.add (local.get $sum) (f64x2.extract_lane 1 (local.get $e))))))
          (local.set $j (i32.add (local.get $j) (i32.const 2)))
          (br_if $exp_loop (i32.lt_u (local.get $j) (local.get $len))))
        ;; quotients, rounded to float32
        (local.set $vs (f64x2.splat (local.get $sum)))
        (local.set $j (i32.const 0))
        (loop $div_loop
          (v128.store64_lane 0 (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2)))
            (f32x4.demote_f64x2_zero (f64x2.div (v128.load (i32.add (local.get $tmp) (i32.shl (local.get $j) (i32.const 3)))) (local.get $vs))))
          (local.set $j (i32.add (local.get $j) (i32.const 2)))
          (br_if $div_loop (i32.lt_u (local.get $j) (local.get $len))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br_if $row_loop (i32.lt_u (local.get $row) (local.get $rows))))))

  ;; ---------------------------------------------------------------------------------------
  ;; Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"):
  ;; a 3x3 stride-1 convolution as 16 products of half the multiply-adds of im2col's one:
  ;;   Y(2x2 tile) = A^T [ (G g G^T) (.) (B^T d B) ] A   over each 4x4 input tile d,
  ;;   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1].
  ;; The weights' transform G g G^T is made once in JS (conv-gemm.ts) and packed as 16 A
  ;; operands; `winograd_in` writes each tile's 16 transformed values straight into 16 packed B
  ;; operands; `gemm` multiplies the 16 pairs (a batch of 16); `winograd_out` turns each 2x2
  ;; tile's 16 products back into outputs, with the bias, a folded residual and the clamp.
  ;; Both transforms take 4 horizontally adjacent tiles at a time, one per lane.
  ;; ---------------------------------------------------------------------------------------

  ;; Descriptor (i32 words at `d`): 0 x (the chunk's first image)  1 C  2 H  3 W  4 PT  5 PL
  ;; 6 TY (tile rows per image)  7 TX (tiles per row, a multiple of 4)  8 r0  9 r1 (this thread's
  ;; tile rows, counted over the chunk's images)  10 band (tile rows per pass)  11 dst (the 16
  ;; packed B operands, K = C; column j = (image * TY + ty) * TX + tx)  12 strideV (bytes from one
  ;; operand to the next)  13 scratch (C planes of 2*band+2 rows of SW floats, this thread's)
  ;; 14 SW (>= 2*TX + 4, a multiple of 4).
  ;; Per pass, the input rows a band of tile rows reads are copied, every channel's, into the
  ;; scratch with the padding as zeros (plane row r, column q hold x[2*ty0 + r - PT, q - PL]), so
  ;; the transform reads without bounds checks; then for each group of 4 tiles the channels go
  ;; innermost: a channel's 16 values land 32 bytes after the previous channel's in each of the
  ;; 16 operands, so every operand is written front to back (channels outermost wrote each cache
  ;; line four times, far apart: a third of the convolution's time on ResNet's first stage).
  (func $winogradIn (export "winograd_in") (param $d i32)
    (local $x i32) (local $C i32) (local $H i32) (local $W i32) (local $PT i32) (local $PL i32)
    (local $TY i32) (local $TX i32) (local $r0 i32) (local $r1 i32) (local $band i32) (local $dst i32)
    (local $sv i32) (local $sp i32) (local $SW i32) (local $swb i32) (local $ps i32) (local $rows i32)
    (local $R i32) (local $Rend i32) (local $img i32) (local $ty0 i32) (local $rr i32)
    (local $ch i32) (local $r i32) (local $ih i32) (local $row i32) (local $src i32) (local $q i32)
    (local $tx i32) (local $j i32) (local $at i32) (local $a3 i32) (local $o i32) (local $top i32) (local $k8 i32)
    (local $sv2 i32) (local $sv3 i32) (local $sv4 i32)
    (local $u0 v128) (local $u1 v128) (local $u2 v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128)
    (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128)
    (local.set $x (i32.load offset=0 (local.get $d)))
    (local.set $C (i32.load offset=4 (local.get $d)))
    (local.set $H (i32.load offset=8 (local.get $d)))
    (local.set $W (i32.load offset=12 (local.get $d)))
    (local.set $PT (i32.load offset=16 (local.get $d)))
    (local.set $PL (i32.load offset=20 (local.get $d)))
    (local.set $TY (i32.load offset=24 (local.get $d)))
    (local.set $TX (i32.load offset=28 (local.get $d)))
    (local.set $r0 (i32.load offset=32 (local.get $d)))
    (local.set $r1 (i32.load offset=36 (local.get $d)))
    (local.set $band (i32.load offset=40 (local.get $d)))
    (local.set $dst (i32.load offset=44 (local.get $d)))
    (local.set $sv (i32.load offset=48 (local.get $d)))
    (local.set $sp (i32.load offset=52 (local.get $d)))
    (local.set $SW (i32.load offset=56 (local.get $d)))
    (if (i32.or (i32.ge_u (local.get $r0) (local.get $r1)) (i32.or (i32.eqz (local.get $C)) (i32.eqz (local.get $band)))) (then (return)))
    (local.set $swb (i32.shl (local.get $SW) (i32.const 2)))
    (local.set $ps (i32.mul (i32.add (i32.shl (local.get $band) (i32.const 1)) (i32.const 2)) (local.get $swb)))
    (local.set $k8 (i32.shl (local.get $C) (i32.const 5)))
    (local.set $sv2 (i32.shl (local.get $sv) (i32.const 1)))
    (local.set $sv3 (i32.add (local.get $sv2) (local.get $sv)))
    (local.set $sv4 (i32.shl (local.get $sv) (i32.const 2)))
    (local.set $R (local.get $r0))
    (loop $pass
      (local.set $img (i32.div_u (local.get $R) (local.get $TY)))
      (local.set $ty0 (i32.sub (local.get $R) (i32.mul (local.get $img) (local.get $TY))))
      (local.set $Rend (i32.add (local.get $R) (local.get $band)))
      (if (i32.gt_u (local.get $Rend) (local.get $r1)) (then (local.set $Rend (local.get $r1))))
      (if (i32.gt_u (local.get $Rend) (i32.mul (i32.add (local.get $img) (i32.const 1)) (local.get $TY)))
        (then (local.set $Rend (i32.mul (i32.add (local.get $img) (i32.const 1)) (local.get $TY)))))
      (local.set $rows (i32.add (i32.shl (i32.sub (local.get $Rend) (local.get $R)) (i32.const 1)) (i32.const 2)))
      ;; the padded planes of this band
      (local.set $ch (i32.const 0))
      (loop $ch_fill
        (local.set $r (i32.const 0))
        (loop $fill
          (local.set $row (i32.add (i32.add (local.get $sp) (i32.mul (local.get $ch) (local.get $ps))) (i32.mul (local.get $r) (local.get $swb))))
          (local.set $q (i32.const 0))
          (loop $zero
            (v128.store (i32.add (local.get $row) (i32.shl (local.get $q) (i32.const 2))) (v128.const i32x4 0 0 0 0))
            (local.set $q (i32.add (local.get $q) (i32.const 4)))
            (br_if $zero (i32.lt_u (local.get $q) (local.get $SW))))
          (local.set $ih (i32.sub (i32.add (i32.shl (local.get $ty0) (i32.const 1)) (local.get $r)) (local.get $PT)))
          (if (i32.lt_u (local.get $ih) (local.get $H))
            (then
              (local.set $src (i32.add (local.get $x) (i32.shl
                (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $C)) (local.get $ch)) (local.get $H)) (local.get $ih)) (local.get $W))
                (i32.const 2))))
              (local.set $row (i32.add (local.get $row) (i32.shl (local.get $PL) (i32.const 2))))
              (local.set $q (i32.const 0))
              (block $vec_done
                (br_if $vec_done (i32.lt_u (local.get $W) (i32.const 4)))
                (loop $vec
                  (v128.store (i32.add (local.get $row) (i32.shl (local.get $q) (i32.const 2)))
                    (v128.load (i32.add (local.get $src) (i32.shl (local.get $q) (i32.const 2)))))
                  (local.set $q (i32.add (local.get $q) (i32.const 4)))
                  (br_if $vec (i32.le_u (i32.add (local.get $q) (i32.const 4)) (local.get $W)))))
              (block $tail_done
                (br_if $tail_done (i32.ge_u (local.get $q) (local.get $W)))
                (loop $tail
                  (f32.store (i32.add (local.get $row) (i32.shl (local.get $q) (i32.const 2)))
                    (f32.load (i32.add (local.get $src) (i32.shl (local.get $q) (i32.const 2)))))
                  (local.set $q (i32.add (local.get $q) (i32.const 1)))
                  (br_if $tail (i32.lt_u (local.get $q) (local.get $W)))))))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br_if $fill (i32.lt_u (local.get $r) (local.get $rows))))
        (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
        (br_if $ch_fill (i32.lt_u (local.get $ch) (local.get $C))))
      ;; the tiles, 4 at a time: the vertical transform on the rows' raw floats (12 per row: the
      ;; 4 tiles' columns of the padded plane), then per transformed row the columns split out
      ;; with shuffles and the horizontal transform
      (loop $row_loop
        (local.set $top (i32.add (local.get $sp) (i32.mul (i32.shl (i32.sub (local.get $R) (i32.add (i32.mul (local.get $img) (local.get $TY)) (local.get $ty0))) (i32.const 1)) (local.get $swb))))
        (local.set $tx (i32.const 0))
        (loop $tx_loop
          (local.set $j (i32.add (i32.mul (local.get $R) (local.get $TX)) (local.get $tx)))
          (local.set $o (i32.add (local.get $dst)
            (i32.add (i32.mul (i32.shr_u (local.get $j) (i32.const 3)) (local.get $k8)) (i32.shl (i32.and (local.get $j) (i32.const 7)) (i32.const 2)))))
          (local.set $at (i32.add (local.get $top) (i32.shl (local.get $tx) (i32.const 3))))
          (local.set $ch (i32.const 0))
          (loop $ch_loop
            (local.set $a3 (i32.add (local.get $at) (i32.mul (local.get $swb) (i32.const 3))))
            ;; rows 1 and 2 serve three of the four transformed rows
            (local.set $u0 (v128.load offset=0 (i32.add (local.get $at) (local.get $swb))))
            (local.set $u1 (v128.load offset=16 (i32.add (local.get $at) (local.get $swb))))
            (local.set $u2 (v128.load offset=32 (i32.add (local.get $at) (local.get $swb))))
            (local.set $w0 (v128.load offset=0 (i32.add (local.get $at) (i32.shl (local.get $swb) (i32.const 1)))))
            (local.set $w1 (v128.load offset=16 (i32.add (local.get $at) (i32.shl (local.get $swb) (i32.const 1)))))
            (local.set $w2 (v128.load offset=32 (i32.add (local.get $at) (i32.shl (local.get $swb) (i32.const 1)))))
            ;; rows of B^T d: d0 - d2, d1 + d2, d2 - d1, d1 - d3; each through (. B): floats
            ;; 0 2 4 6, 1 3 5 7, 2 4 6 8, 3 5 7 9 of the row are the 4 tiles' columns 0 .. 3
              (local.set $t0 (f32x4.sub (v128.load offset=0 (local.get $at)) (local.get $w0)))
              (local.set $t1 (f32x4.sub (v128.load offset=16 (local.get $at)) (local.get $w1)))
              (local.set $t2 (f32x4.sub (v128.load offset=32 (local.get $at)) (local.get $w2)))
              (local.set $q0 (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $t0) (local.get $t1)))
              (local.set $q1 (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $t0) (local.get $t1)))
              (local.set $q2 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (local.get $q0) (local.get $t2)))
              (local.set $q3 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 20 21 22 23 (local.get $q1) (local.get $t2)))
              (v128.store (local.get $o) (f32x4.sub (local.get $q0) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv)) (f32x4.add (local.get $q1) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv2)) (f32x4.sub (local.get $q2) (local.get $q1)))
              (v128.store (i32.add (local.get $o) (local.get $sv3)) (f32x4.sub (local.get $q1) (local.get $q3)))
              (local.set $o (i32.add (local.get $o) (local.get $sv4)))
              (local.set $t0 (f32x4.add (local.get $u0) (local.get $w0)))
              (local.set $t1 (f32x4.add (local.get $u1) (local.get $w1)))
              (local.set $t2 (f32x4.add (local.get $u2) (local.get $w2)))
              (local.set $q0 (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $t0) (local.get $t1)))
              (local.set $q1 (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $t0) (local.get $t1)))
              (local.set $q2 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (local.get $q0) (local.get $t2)))
              (local.set $q3 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 20 21 22 23 (local.get $q1) (local.get $t2)))
              (v128.store (local.get $o) (f32x4.sub (local.get $q0) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv)) (f32x4.add (local.get $q1) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv2)) (f32x4.sub (local.get $q2) (local.get $q1)))
              (v128.store (i32.add (local.get $o) (local.get $sv3)) (f32x4.sub (local.get $q1) (local.get $q3)))
              (local.set $o (i32.add (local.get $o) (local.get $sv4)))
              (local.set $t0 (f32x4.sub (local.get $w0) (local.get $u0)))
              (local.set $t1 (f32x4.sub (local.get $w1) (local.get $u1)))
              (local.set $t2 (f32x4.sub (local.get $w2) (local.get $u2)))
              (local.set $q0 (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $t0) (local.get $t1)))
              (local.set $q1 (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $t0) (local.get $t1)))
              (local.set $q2 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (local.get $q0) (local.get $t2)))
              (local.set $q3 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 20 21 22 23 (local.get $q1) (local.get $t2)))
              (v128.store (local.get $o) (f32x4.sub (local.get $q0) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv)) (f32x4.add (local.get $q1) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv2)) (f32x4.sub (local.get $q2) (local.get $q1)))
              (v128.store (i32.add (local.get $o) (local.get $sv3)) (f32x4.sub (local.get $q1) (local.get $q3)))
              (local.set $o (i32.add (local.get $o) (local.get $sv4)))
              (local.set $t0 (f32x4.sub (local.get $u0) (v128.load offset=0 (local.get $a3))))
              (local.set $t1 (f32x4.sub (local.get $u1) (v128.load offset=16 (local.get $a3))))
              (local.set $t2 (f32x4.sub (local.get $u2) (v128.load offset=32 (local.get $a3))))
              (local.set $q0 (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $t0) (local.get $t1)))
              (local.set $q1 (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $t0) (local.get $t1)))
              (local.set $q2 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (local.get $q0) (local.get $t2)))
              (local.set $q3 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 20 21 22 23 (local.get $q1) (local.get $t2)))
              (v128.store (local.get $o) (f32x4.sub (local.get $q0) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv)) (f32x4.add (local.get $q1) (local.get $q2)))
              (v128.store (i32.add (local.get $o) (local.get $sv2)) (f32x4.sub (local.get $q2) (local.get $q1)))
              (v128.store (i32.add (local.get $o) (local.get $sv3)) (f32x4.sub (local.get $q1) (local.get $q3)))
              (local.set $o (i32.add (local.get $o) (local.get $sv4)))
            ;; the next channel: its plane, and 32 bytes on in each operand (back from the 16 strides)
            (local.set $o (i32.sub (i32.add (local.get $o) (i32.const 32)) (i32.shl (local.get $sv4) (i32.const 2))))
            (local.set $at (i32.add (local.get $at) (local.get $ps)))
            (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
            (br_if $ch_loop (i32.lt_u (local.get $ch) (local.get $C))))
          (local.set $tx (i32.add (local.get $tx) (i32.const 4)))
          (br_if $tx_loop (i32.lt_u (local.get $tx) (local.get $TX))))
        (local.set $R (i32.add (local.get $R) (i32.const 1)))
        (br_if $row_loop (i32.lt_u (local.get $R) (local.get $Rend))))
      (br_if $pass (i32.lt_u (local.get $R) (local.get $r1)))))

  ;; Descriptor (i32 words at `d`): 0 prod (the 16 products, each [M, ld] row-major)  1 M  2 ld
  ;; (columns: images * TY*TX)  3 strideC (bytes from one product to the next)  4 out (the
  ;; chunk's first image, NCHW)  5 OH  6 OW  7 TY  8 TX  9 m0  10 m1 (this thread's channels)
  ;; 11 images  12 bias (0: none; one per channel)  13 residual (0: none; laid out as out)
  ;; 14 act (0: none, 1: clamp)  15 lo (f32 bits)  16 hi (f32 bits)  17 scratch (64 bytes).
  ;; Bias, residual and clamp in the GEMM epilogue's order. A group of 4 tiles that reaches past
  ;; the output's last row or column is stored through the scratch, its valid part only.
  (func $winogradOut (export "winograd_out") (param $d i32)
    (local $prod i32) (local $M i32) (local $ld i32) (local $sc i32) (local $out i32) (local $OH i32) (local $OW i32)
    (local $TY i32) (local $TX i32) (local $m0 i32) (local $m1 i32) (local $images i32) (local $bias i32) (local $res i32)
    (local $act i32) (local $lo f32) (local $hi f32) (local $scratch i32)
    (local $img i32) (local $m i32) (local $ty i32) (local $tx i32) (local $src i32) (local $y i32) (local $o i32) (local $rr i32)
    (local $r i32) (local $q i32) (local $plane i32) (local $ldb i32) (local $v f32)
    (local $s00 v128) (local $s01 v128) (local $s02 v128) (local $s03 v128)
    (local $s10 v128) (local $s11 v128) (local $s12 v128) (local $s13 v128)
    (local $x1 v128) (local $x2 v128) (local $y00 v128) (local $y01 v128) (local $y10 v128) (local $y11 v128)
    (local $vb v128) (local $vlo v128) (local $vhi v128)
    (local.set $prod (i32.load offset=0 (local.get $d)))
    (local.set $M (i32.load offset=4 (local.get $d)))
    (local.set $ld (i32.load offset=8 (local.get $d)))
    (local.set $sc (i32.load offset=12 (local.get $d)))
    (local.set $out (i32.load offset=16 (local.get $d)))
    (local.set $OH (i32.load offset=20 (local.get $d)))
    (local.set $OW (i32.load offset=24 (local.get $d)))
    (local.set $TY (i32.load offset=28 (local.get $d)))
    (local.set $TX (i32.load offset=32 (local.get $d)))
    (local.set $m0 (i32.load offset=36 (local.get $d)))
    (local.set $m1 (i32.load offset=40 (local.get $d)))
    (local.set $images (i32.load offset=44 (local.get $d)))
    (local.set $bias (i32.load offset=48 (local.get $d)))
    (local.set $res (i32.load offset=52 (local.get $d)))
    (local.set $act (i32.load offset=56 (local.get $d)))
    (local.set $lo (f32.load offset=60 (local.get $d)))
    (local.set $hi (f32.load offset=64 (local.get $d)))
    (local.set $scratch (i32.load offset=68 (local.get $d)))
    (if (i32.or (i32.ge_u (local.get $m0) (local.get $m1)) (i32.or (i32.eqz (local.get $images)) (i32.eqz (local.get $TY)))) (then (return)))
    (local.set $vlo (f32x4.splat (local.get $lo)))
    (local.set $vhi (f32x4.splat (local.get $hi)))
    (local.set $ldb (i32.shl (local.get $OW) (i32.const 2)))
    ;; channels outermost: a channel's products are one run of every image's tiles in each of the 16
    (local.set $m (local.get $m0))
    (loop $m_loop
      (local.set $vb (v128.const i32x4 0 0 0 0))
      (if (local.get $bias) (then (local.set $vb (v128.load32_splat (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2)))))))
      (local.set $img (i32.const 0))
      (loop $img_loop
        ;; byte offset of this output plane in out (and in the residual)
        (local.set $plane (i32.shl (i32.mul (i32.add (i32.mul (local.get $img) (local.get $M)) (local.get $m)) (i32.mul (local.get $OH) (local.get $OW))) (i32.const 2)))
        (local.set $ty (i32.const 0))
        (loop $ty_loop
          (local.set $tx (i32.const 0))
          (loop $tx_loop
            (local.set $src (i32.add (local.get $prod) (i32.shl
              (i32.add (i32.mul (local.get $m) (local.get $ld))
                (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $TY)) (local.get $ty)) (local.get $TX)) (local.get $tx)))
              (i32.const 2))))
            ;; A^T over the rows: s0k = m0k + m1k + m2k, s1k = m1k - m2k - m3k (column k = 0..3)
            (local.set $x1 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 4)))))
            (local.set $x2 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 8)))))
            (local.set $s00 (f32x4.add (f32x4.add (v128.load (local.get $src)) (local.get $x1)) (local.get $x2)))
            (local.set $s10 (f32x4.sub (f32x4.sub (local.get $x1) (local.get $x2)) (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 12))))))
            (local.set $x1 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 5)))))
            (local.set $x2 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 9)))))
            (local.set $s01 (f32x4.add (f32x4.add (v128.load (i32.add (local.get $src) (local.get $sc))) (local.get $x1)) (local.get $x2)))
            (local.set $s11 (f32x4.sub (f32x4.sub (local.get $x1) (local.get $x2)) (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 13))))))
            (local.set $x1 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 6)))))
            (local.set $x2 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 10)))))
            (local.set $s02 (f32x4.add (f32x4.add (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 2)))) (local.get $x1)) (local.get $x2)))
            (local.set $s12 (f32x4.sub (f32x4.sub (local.get $x1) (local.get $x2)) (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 14))))))
            (local.set $x1 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 7)))))
            (local.set $x2 (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 11)))))
            (local.set $s03 (f32x4.add (f32x4.add (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 3)))) (local.get $x1)) (local.get $x2)))
            (local.set $s13 (f32x4.sub (f32x4.sub (local.get $x1) (local.get $x2)) (v128.load (i32.add (local.get $src) (i32.mul (local.get $sc) (i32.const 15))))))
            ;; A^T over the columns: y_r0 = s_r0 + s_r1 + s_r2, y_r1 = s_r1 - s_r2 - s_r3
            (local.set $y00 (f32x4.add (f32x4.add (local.get $s00) (local.get $s01)) (local.get $s02)))
            (local.set $y01 (f32x4.sub (f32x4.sub (local.get $s01) (local.get $s02)) (local.get $s03)))
            (local.set $y10 (f32x4.add (f32x4.add (local.get $s10) (local.get $s11)) (local.get $s12)))
            (local.set $y11 (f32x4.sub (f32x4.sub (local.get $s11) (local.get $s12)) (local.get $s13)))
            ;; interleaved into output rows: tile l's columns 2l, 2l+1
            (local.set $s00 (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $y00) (local.get $y01)) (local.get $vb)))
            (local.set $s01 (f32x4.add (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $y00) (local.get $y01)) (local.get $vb)))
            (local.set $s10 (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $y10) (local.get $y11)) (local.get $vb)))
            (local.set $s11 (f32x4.add (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $y10) (local.get $y11)) (local.get $vb)))
            (local.set $y (i32.shl (local.get $ty) (i32.const 1)))
            (local.set $o (i32.add (local.get $plane) (i32.add (i32.mul (local.get $y) (local.get $ldb)) (i32.shl (local.get $tx) (i32.const 3)))))
            (if (i32.and (i32.le_u (i32.add (i32.shl (local.get $tx) (i32.const 1)) (i32.const 8)) (local.get $OW))
                         (i32.lt_u (i32.add (local.get $y) (i32.const 1)) (local.get $OH)))
              (then
                (if (local.get $res)
                  (then
                    (local.set $rr (i32.add (local.get $res) (local.get $o)))
                    (local.set $s00 (f32x4.add (local.get $s00) (v128.load offset=0 (local.get $rr))))
                    (local.set $s01 (f32x4.add (local.get $s01) (v128.load offset=16 (local.get $rr))))
                    (local.set $rr (i32.add (local.get $rr) (local.get $ldb)))
                    (local.set $s10 (f32x4.add (local.get $s10) (v128.load offset=0 (local.get $rr))))
                    (local.set $s11 (f32x4.add (local.get $s11) (v128.load offset=16 (local.get $rr))))))
                (if (local.get $act)
                  (then
                    (local.set $s00 (f32x4.min (f32x4.max (local.get $s00) (local.get $vlo)) (local.get $vhi)))
                    (local.set $s01 (f32x4.min (f32x4.max (local.get $s01) (local.get $vlo)) (local.get $vhi)))
                    (local.set $s10 (f32x4.min (f32x4.max (local.get $s10) (local.get $vlo)) (local.get $vhi)))
                    (local.set $s11 (f32x4.min (f32x4.max (local.get $s11) (local.get $vlo)) (local.get $vhi)))))
                (local.set $o (i32.add (local.get $out) (local.get $o)))
                (v128.store offset=0 (local.get $o) (local.get $s00))
                (v128.store offset=16 (local.get $o) (local.get $s01))
                (local.set $o (i32.add (local.get $o) (local.get $ldb)))
                (v128.store offset=0 (local.get $o) (local.get $s10))
                (v128.store offset=16 (local.get $o) (local.get $s11)))
              (else
                ;; the edge: through the scratch, element by element
                (v128.store offset=0 (local.get $scratch) (local.get $s00))
                (v128.store offset=16 (local.get $scratch) (local.get $s01))
                (v128.store offset=32 (local.get $scratch) (local.get $s10))
                (v128.store offset=48 (local.get $scratch) (local.get $s11))
                (local.set $r (i32.const 0))
                (loop $r_loop
                  (if (i32.lt_u (i32.add (local.get $y) (local.get $r)) (local.get $OH))
                    (then
                      (local.set $q (i32.const 0))
                      (loop $q_loop
                        (if (i32.lt_u (i32.add (i32.shl (local.get $tx) (i32.const 1)) (local.get $q)) (local.get $OW))
                          (then
                            (local.set $rr (i32.add (i32.add (local.get $o) (i32.mul (local.get $r) (local.get $ldb))) (i32.shl (local.get $q) (i32.const 2))))
                            (local.set $v (f32.load (i32.add (local.get $scratch) (i32.shl (i32.add (i32.shl (local.get $r) (i32.const 3)) (local.get $q)) (i32.const 2)))))
                            (if (local.get $res) (then (local.set $v (f32.add (local.get $v) (f32.load (i32.add (local.get $res) (local.get $rr)))))))
                            (if (local.get $act)
                              (then (local.set $v (f32.min (f32.max (local.get $v) (local.get $lo)) (local.get $hi)))))
                            (f32.store (i32.add (local.get $out) (local.get $rr)) (local.get $v))))
                        (local.set $q (i32.add (local.get $q) (i32.const 1)))
                        (br_if $q_loop (i32.lt_u (local.get $q) (i32.const 8))))))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br_if $r_loop (i32.lt_u (local.get $r) (i32.const 2))))))
            (local.set $tx (i32.add (local.get $tx) (i32.const 4)))
            (br_if $tx_loop (i32.lt_u (local.get $tx) (local.get $TX))))
          (local.set $ty (i32.add (local.get $ty) (i32.const 1)))
          (br_if $ty_loop (i32.lt_u (local.get $ty) (local.get $TY))))
        (local.set $img (i32.add (local.get $img) (i32.const 1)))
        (br_if $img_loop (i32.lt_u (local.get $img) (local.get $images))))
      (local.set $m (i32.add (local.get $m) (i32.const 1)))
      (br_if $m_loop (i32.lt_u (local.get $m) (local.get $m1)))))

  ;; A whole Winograd convolution of some images on one thread: three descriptor addresses at d
  ;; (winograd_in's, the batched product's job, winograd_out's), run in turn. A batch of images
  ;; is shared out this way, each thread with buffers of its own: one hand-over per convolution
  ;; instead of one per phase.
  (func (export "winograd_all") (param $d i32)
    (call $winogradIn (i32.load offset=0 (local.get $d)))
    (call $gemm (i32.load offset=4 (local.get $d)))
    (call $winogradOut (i32.load offset=8 (local.get $d))))

  ;; ---------------------------------------------------------------------------------------
  ;; Driver: this thread's share of one job (see the descriptor above)
  ;; ---------------------------------------------------------------------------------------
  (func $gemm (export "gemm") (param $job i32)
    (local $m i32) (local $n i32) (local $k i32) (local $aMode i32) (local $a i32) (local $lda i32)
    (local $bMode i32) (local $b i32) (local $ldb i32) (local $c i32) (local $ldc i32)
    (local $biasMode i32) (local $bias i32) (local $act i32) (local $lo f32) (local $hi f32)
    (local $i0 i32) (local $i1 i32) (local $j0 i32) (local $j1 i32) (local $work i32)
    (local $bt i32) (local $b1 i32) (local $strideA i32) (local $strideB i32) (local $strideC i32)
    (local $aBase i32) (local $bBase i32) (local $cBase i32) (local $packA i32) (local $packB i32)
    (local $blocks i32) (local $row0 i32) (local $panels i32) (local $col0 i32)
    (local $i i32) (local $j i32) (local $p i32) (local $kc i32) (local $ldcb i32)
    (local $mr i32) (local $nr i32) (local $r i32) (local $col i32) (local $accum i32) (local $final i32)
    (local $ctile i32) (local $dst i32) (local $v f32) (local $biasAt i32) (local $post i32) (local $full i32) (local $residual i32) (local $rtile i32) (local $kstep i32)
    (local $nc i32) (local $jb i32) (local $je i32)
    (local.set $m (i32.load offset=0 (local.get $job)))
    (local.set $n (i32.load offset=4 (local.get $job)))
    (local.set $k (i32.load offset=8 (local.get $job)))
    (local.set $aMode (i32.load offset=12 (local.get $job)))
    (local.set $a (i32.load offset=16 (local.get $job)))
    (local.set $lda (i32.load offset=20 (local.get $job)))
    (local.set $bMode (i32.load offset=24 (local.get $job)))
    (local.set $b (i32.load offset=28 (local.get $job)))
    (local.set $ldb (i32.load offset=32 (local.get $job)))
    (local.set $c (i32.load offset=36 (local.get $job)))
    (local.set $ldc (i32.load offset=40 (local.get $job)))
    (local.set $biasMode (i32.load offset=44 (local.get $job)))
    (local.set $bias (i32.load offset=48 (local.get $job)))
    (local.set $act (i32.load offset=52 (local.get $job)))
    (local.set $lo (f32.load offset=56 (local.get $job)))
    (local.set $hi (f32.load offset=60 (local.get $job)))
    (local.set $i0 (i32.load offset=64 (local.get $job)))
    (local.set $i1 (i32.load offset=68 (local.get $job)))
    (local.set $j0 (i32.load offset=72 (local.get $job)))
    (local.set $j1 (i32.load offset=76 (local.get $job)))
    (local.set $work (i32.load offset=80 (local.get $job)))
    (local.set $bt (i32.load offset=84 (local.get $job)))
    (local.set $b1 (i32.load offset=88 (local.get $job)))
    (local.set $strideA (i32.load offset=92 (local.get $job)))
    (local.set $strideB (i32.load offset=96 (local.get $job)))
    (local.set $strideC (i32.load offset=100 (local.get $job)))
    (local.set $residual (i32.load offset=104 (local.get $job)))
    (local.set $nc (i32.load offset=108 (local.get $job)))
    (if (i32.or (i32.or (i32.ge_u (local.get $i0) (local.get $i1)) (i32.ge_u (local.get $j0) (local.get $j1)))
          (i32.or (i32.ge_u (local.get $bt) (local.get $b1)) (i32.eqz (local.get $k))))
      (then (return)))
    (local.set $ldcb (i32.shl (local.get $ldc) (i32.const 2)))
    ;; kstep = ceil(k / ceil(k / KMAX)), KMAX = 256
    (local.set $kstep (i32.div_u (i32.add (local.get $k) (i32.const 255)) (i32.const 256)))
    (local.set $kstep (i32.div_u (i32.add (local.get $k) (i32.sub (local.get $kstep) (i32.const 1))) (local.get $kstep)))
    (local.set $post (i32.ne (i32.or (i32.or (local.get $biasMode) (local.get $act)) (local.get $residual)) (i32.const 0)))
    (local.set $packA (i32.add (local.get $work) (i32.const 256)))
    (local.set $packB (local.get $packA))
    (if (i32.eqz (local.get $aMode))
      (then
        (local.set $packB (i32.add (local.get $packA)
          (i32.shl (i32.mul (i32.and (i32.add (i32.sub (local.get $i1) (local.get $i0)) (i32.const 3)) (i32.const -4)) (local.get $k)) (i32.const 2))))))

    (loop $batch_loop
      (local.set $aBase (i32.add (local.get $a) (i32.mul (local.get $bt) (local.get $strideA))))
      (local.set $bBase (i32.add (local.get $b) (i32.mul (local.get $bt) (local.get $strideB))))
      (if (i32.eq (local.get $bMode) (i32.const 3)) (then (local.set $bBase (local.get $b))))
      (local.set $cBase (i32.add (local.get $c) (i32.mul (local.get $bt) (local.get $strideC))))

      ;; A: this thread's rows, packed here unless packed once by pack_a
      (if (i32.eq (local.get $aMode) (i32.const 1))
        (then
          (local.set $blocks (local.get $aBase))
          (local.set $row0 (i32.const 0)))
        (else
          (local.set $i (local.get $i0))
          (loop $pa_loop
            (local.set $mr (i32.sub (local.get $i1) (local.get $i)))
            (if (i32.gt_u (local.get $mr) (i32.const 4)) (then (local.set $mr (i32.const 4))))
            (if (i32.and (i32.eq (local.get $mr) (i32.const 4)) (i32.ge_u (local.get $k) (i32.const 4)))
              (then
                (call $packRows4
                  (i32.add (local.get $aBase) (i32.shl (i32.mul (local.get $i) (local.get $lda)) (i32.const 2)))
                  (local.get $lda) (local.get $k)
                  (i32.add (local.get $packA) (i32.shl (i32.mul (i32.sub (local.get $i) (local.get $i0)) (local.get $k)) (i32.const 2)))))
              (else
                (call $packRows
                  (i32.add (local.get $aBase) (i32.shl (i32.mul (local.get $i) (local.get $lda)) (i32.const 2)))
                  (local.get $lda) (local.get $mr) (local.get $k) (i32.const 4)
                  (i32.add (local.get $packA) (i32.shl (i32.mul (i32.sub (local.get $i) (local.get $i0)) (local.get $k)) (i32.const 2))))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br_if $pa_loop (i32.lt_u (local.get $i) (local.get $i1))))
          (local.set $blocks (local.get $packA))
          (local.set $row0 (local.get $i0))))

      ;; this thread's columns in blocks [jb, je) of nc (all at once when nc is 0 or B is pre-packed)
      (local.set $jb (local.get $j0))
      (loop $block_loop
      (local.set $je (local.get $j1))
      (if (i32.and (i32.ne (local.get $nc) (i32.const 0)) (i32.ne (local.get $bMode) (i32.const 2)))
        (then (if (i32.lt_u (i32.add (local.get $jb) (local.get $nc)) (local.get $j1))
          (then (local.set $je (i32.add (local.get $jb) (local.get $nc)))))))

      ;; B: the block's columns, packed here unless packed once by pack_b
      (if (i32.eq (local.get $bMode) (i32.const 2))
        (then
          (local.set $panels (local.get $bBase))
          (local.set $col0 (i32.const 0)))
        (else
          (if (i32.eq (local.get $bMode) (i32.const 3))
            (then
              (local.set $j (local.get $jb))
              (loop $conv_loop
                (local.set $nr (i32.sub (local.get $je) (local.get $j)))
                (if (i32.gt_u (local.get $nr) (i32.const 8)) (then (local.set $nr (i32.const 8))))
                (call $packConv (local.get $bBase) (i32.mul (local.get $bt) (local.get $strideB)) (local.get $j) (local.get $nr)
                  (i32.add (local.get $packB) (i32.shl (i32.mul (i32.sub (local.get $j) (local.get $jb)) (local.get $k)) (i32.const 2)))
                  (i32.add (local.get $work) (i32.const 128)))
                (local.set $j (i32.add (local.get $j) (i32.const 8)))
                (br_if $conv_loop (i32.lt_u (local.get $j) (local.get $je)))))
            (else
              (call $packB (local.get $bBase) (local.get $ldb) (local.get $bMode) (local.get $jb) (local.get $je) (local.get $k) (local.get $packB))))
          (local.set $panels (local.get $packB))
          (local.set $col0 (local.get $jb))))

      ;; K slices of at most KMAX, all of about equal length (576 = 3 x 192, not 256 + 256 + 64:
      ;; a short last slice is a whole extra pass over C for little work); within a slice, each
      ;; B panel meets every A block
      (local.set $p (i32.const 0))
      (loop $k_loop
        (local.set $kc (i32.sub (local.get $k) (local.get $p)))
        (if (i32.gt_u (local.get $kc) (local.get $kstep)) (then (local.set $kc (local.get $kstep))))
        (local.set $accum (i32.ne (local.get $p) (i32.const 0)))
        (local.set $final (i32.and (local.get $post) (i32.eq (i32.add (local.get $p) (local.get $kc)) (local.get $k))))
        (local.set $j (local.get $jb))
        (loop $j_loop
          (local.set $nr (i32.sub (local.get $je) (local.get $j)))
          (if (i32.gt_u (local.get $nr) (i32.const 8)) (then (local.set $nr (i32.const 8))))
          (local.set $i (local.get $i0))
          (loop $i_loop
            (local.set $mr (i32.sub (local.get $i1) (local.get $i)))
            (if (i32.gt_u (local.get $mr) (i32.const 4)) (then (local.set $mr (i32.const 4))))
            (local.set $ctile (i32.add (local.get $cBase)
              (i32.shl (i32.add (i32.mul (local.get $i) (local.get $ldc)) (local.get $j)) (i32.const 2))))
            (local.set $biasAt (local.get $bias))
            (if (i32.eq (local.get $biasMode) (i32.const 1))
              (then (local.set $biasAt (i32.add (local.get $bias) (i32.shl (local.get $i) (i32.const 2))))))
            (if (i32.eq (local.get $biasMode) (i32.const 2))
              (then (local.set $biasAt (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $full (i32.and (i32.eq (local.get $mr) (i32.const 4)) (i32.eq (local.get $nr) (i32.const 8))))
            ;; the residual tile lies where C's does, in an array of C's layout
            (local.set $rtile (i32.const 0))
            (if (local.get $residual) (then (local.set $rtile (i32.add (local.get $ctile) (i32.sub (local.get $residual) (local.get $c))))))
            (if (local.get $full)
              (then
                (call $kernel4x8
                  (i32.add (local.get $blocks) (i32.shl (i32.add (i32.mul (i32.sub (local.get $i) (local.get $row0)) (local.get $k)) (i32.shl (local.get $p) (i32.const 2))) (i32.const 2)))
                  (i32.add (local.get $panels) (i32.shl (i32.add (i32.mul (i32.sub (local.get $j) (local.get $col0)) (local.get $k)) (i32.shl (local.get $p) (i32.const 3))) (i32.const 2)))
                  (local.get $kc) (local.get $ctile) (local.get $ldcb) (local.get $accum))
                (if (local.get $final)
                  (then (call $post4x8 (local.get $ctile) (local.get $ldcb) (local.get $biasAt) (local.get $biasMode)
                          (local.get $act) (local.get $lo) (local.get $hi) (local.get $rtile)))))
              (else
                ;; edge tile: compute into the scratch tile, then store (or add) its valid part
                (call $kernel4x8
                  (i32.add (local.get $blocks) (i32.shl (i32.add (i32.mul (i32.sub (local.get $i) (local.get $row0)) (local.get $k)) (i32.shl (local.get $p) (i32.const 2))) (i32.const 2)))
                  (i32.add (local.get $panels) (i32.shl (i32.add (i32.mul (i32.sub (local.get $j) (local.get $col0)) (local.get $k)) (i32.shl (local.get $p) (i32.const 3))) (i32.const 2)))
                  (local.get $kc) (local.get $work) (i32.const 32) (i32.const 0))
                (local.set $r (i32.const 0))
                (loop $r_loop
                  (local.set $col (i32.const 0))
                  (loop $col_loop
                    (local.set $dst (i32.add (local.get $ctile)
                      (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldc)) (local.get $col)) (i32.const 2))))
                    (local.set $v (f32.load (i32.add (local.get $work)
                      (i32.shl (i32.add (i32.shl (local.get $r) (i32.const 3)) (local.get $col)) (i32.const 2)))))
                    (if (local.get $accum)
                      (then (local.set $v (f32.add (f32.load (local.get $dst)) (local.get $v)))))
                    (f32.store (local.get $dst) (local.get $v))
                    (local.set $col (i32.add (local.get $col) (i32.const 1)))
                    (br_if $col_loop (i32.lt_u (local.get $col) (local.get $nr))))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br_if $r_loop (i32.lt_u (local.get $r) (local.get $mr))))))
            (if (i32.and (local.get $final) (i32.eqz (local.get $full)))
              (then
                (call $epilogue (local.get $ctile) (local.get $ldcb) (local.get $mr) (local.get $nr)
                  (local.get $biasAt) (local.get $biasMode) (local.get $act) (local.get $lo) (local.get $hi) (local.get $rtile))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br_if $i_loop (i32.lt_u (local.get $i) (local.get $i1))))
          (local.set $j (i32.add (local.get $j) (i32.const 8)))
          (br_if $j_loop (i32.lt_u (local.get $j) (local.get $je))))
        (local.set $p (i32.add (local.get $p) (local.get $kc)))
        (br_if $k_loop (i32.lt_u (local.get $p) (local.get $k))))
      (local.set $jb (local.get $je))
      (br_if $block_loop (i32.lt_u (local.get $jb) (local.get $j1))))

      (local.set $bt (i32.add (local.get $bt) (i32.const 1)))
      (br_if $batch_loop (i32.lt_u (local.get $bt) (local.get $b1)))))
)
