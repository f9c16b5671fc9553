;; Single-precision GEMM for modelbridge's CPU runtime, hand-written with WebAssembly SIMD128.
;;
;;   C[M,N] = A[M,K] · B        B given as [K,N] (bTrans = 0) or as [N,K] (bTrans = 1)
;;
;; All matrices are row-major float32 in this module's memory; every pointer is a byte address.
;; The caller (src/runtime/wasm/gemm.ts) copies A and B in, grows the memory as needed, calls
;; `sgemm`, and copies C out.
;;
;; Method (GotoBLAS style, one thread):
;;   * A is packed into blocks of MR = 4 rows, stored k-major: block[p*4 + r] = A[i0 + r, p].
;;   * B is packed into panels of NR = 8 columns, stored k-major: panel[p*8 + c] = B(p, j0 + c).
;;     Rows past M and columns past N are packed as zeros, so the micro-kernel always computes
;;     full 4x8 tiles; edge tiles go through a scratch tile and only their valid part is stored.
;;   * The micro-kernel keeps the 4x8 tile of C in 8 f32x4 accumulators: per step of p it loads
;;     two f32x4 of the B panel, splats four A values (v128.load32_splat) and does 8 mul + 8 add.
;;   * K is cut into slices of KC so a B panel slice and an A block slice stay in L1; slices after
;;     the first add into C. Sums are float32 (like BLAS sgemm), each lane sums p in order.
;;
;; Memory map used here: bytes [0, 128) hold the 4x8 scratch tile; everything else is the
;; caller's (A, B, C and the `work` area of packA + packB bytes, see gemm.ts).

(module
  (memory (export "memory") 1)

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
  ;; Driver
  ;; ---------------------------------------------------------------------------------------

  ;; C[m,n] = A[m,k] · B, B at `b` as [k,n] (bTrans = 0) or [n,k] (bTrans = 1).
  ;; m, n, k >= 1; `work` must have workBytes(m, n, k) bytes and not overlap A, B, C or [0, 128).
  (func (export "sgemm")
    (param $m i32) (param $n i32) (param $k i32) (param $bTrans i32)
    (param $a i32) (param $b i32) (param $c i32) (param $work i32)
    (local $packA i32) (local $packB i32) (local $blockA i32) (local $panelB i32)
    (local $i i32) (local $j i32) (local $p i32) (local $kc i32) (local $ldc i32)
    (local $mr i32) (local $nr i32) (local $r i32) (local $col i32) (local $accum i32)
    (local $ctile i32) (local $src i32) (local $dst i32) (local $v f32)

    (local.set $packA (local.get $work))
    (local.set $packB (i32.add (local.get $work)
      (i32.shl (i32.mul (i32.and (i32.add (local.get $m) (i32.const 3)) (i32.const -4)) (local.get $k)) (i32.const 2))))
    (local.set $ldc (i32.shl (local.get $n) (i32.const 2)))

    ;; pack A: blocks of 4 rows, each k*16 bytes
    (local.set $i (i32.const 0))
    (loop $pa_loop
      (local.set $mr (i32.sub (local.get $m) (local.get $i)))
      (if (i32.gt_u (local.get $mr) (i32.const 4)) (then (local.set $mr (i32.const 4))))
      (call $packRows
        (i32.add (local.get $a) (i32.shl (i32.mul (local.get $i) (local.get $k)) (i32.const 2)))
        (local.get $k) (local.get $mr) (local.get $k) (i32.const 4)
        (i32.add (local.get $packA) (i32.shl (i32.mul (local.get $i) (local.get $k)) (i32.const 2))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $pa_loop (i32.lt_u (local.get $i) (local.get $m))))

    ;; pack B: panels of 8 columns, each k*32 bytes
    (local.set $j (i32.const 0))
    (loop $pb_loop
      (local.set $nr (i32.sub (local.get $n) (local.get $j)))
      (if (i32.gt_u (local.get $nr) (i32.const 8)) (then (local.set $nr (i32.const 8))))
      (local.set $dst (i32.add (local.get $packB) (i32.shl (i32.mul (local.get $j) (local.get $k)) (i32.const 2))))
      (if (local.get $bTrans)
        (then
          (local.set $src (i32.add (local.get $b) (i32.shl (i32.mul (local.get $j) (local.get $k)) (i32.const 2))))
          (if (i32.and (i32.eq (local.get $nr) (i32.const 8)) (i32.ge_u (local.get $k) (i32.const 4)))
            (then (call $packRows8 (local.get $src) (local.get $k) (local.get $k) (local.get $dst)))
            (else (call $packRows (local.get $src) (local.get $k) (local.get $nr) (local.get $k) (i32.const 8) (local.get $dst)))))
        (else
          (call $packCols8
            (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
            (local.get $n) (local.get $nr) (local.get $k) (local.get $dst))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br_if $pb_loop (i32.lt_u (local.get $j) (local.get $n))))

    ;; K slices of at most 256; within a slice, each B panel meets every A block
    (local.set $p (i32.const 0))
    (loop $k_loop
      (local.set $kc (i32.sub (local.get $k) (local.get $p)))
      (if (i32.gt_u (local.get $kc) (i32.const 256)) (then (local.set $kc (i32.const 256))))
      (local.set $accum (i32.ne (local.get $p) (i32.const 0)))
      (local.set $j (i32.const 0))
      (loop $j_loop
        (local.set $nr (i32.sub (local.get $n) (local.get $j)))
        (if (i32.gt_u (local.get $nr) (i32.const 8)) (then (local.set $nr (i32.const 8))))
        (local.set $panelB (i32.add (local.get $packB)
          (i32.shl (i32.add (i32.mul (local.get $j) (local.get $k)) (i32.shl (local.get $p) (i32.const 3))) (i32.const 2))))
        (local.set $i (i32.const 0))
        (loop $i_loop
          (local.set $mr (i32.sub (local.get $m) (local.get $i)))
          (if (i32.gt_u (local.get $mr) (i32.const 4)) (then (local.set $mr (i32.const 4))))
          (local.set $blockA (i32.add (local.get $packA)
            (i32.shl (i32.add (i32.mul (local.get $i) (local.get $k)) (i32.shl (local.get $p) (i32.const 2))) (i32.const 2))))
          (local.set $ctile (i32.add (local.get $c)
            (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2))))
          (if (i32.and (i32.eq (local.get $mr) (i32.const 4)) (i32.eq (local.get $nr) (i32.const 8)))
            (then
              (call $kernel4x8 (local.get $blockA) (local.get $panelB) (local.get $kc)
                (local.get $ctile) (local.get $ldc) (local.get $accum)))
            (else
              ;; edge tile: compute into the scratch tile, then store (or add) its valid part
              (call $kernel4x8 (local.get $blockA) (local.get $panelB) (local.get $kc)
                (i32.const 0) (i32.const 32) (i32.const 0))
              (local.set $r (i32.const 0))
              (loop $r_loop
                (local.set $col (i32.const 0))
                (loop $col_loop
                  (local.set $dst (i32.add (local.get $ctile)
                    (i32.shl (i32.add (i32.mul (local.get $r) (local.get $n)) (local.get $col)) (i32.const 2))))
                  (local.set $v (f32.load (i32.shl (i32.add (i32.shl (local.get $r) (i32.const 3)) (local.get $col)) (i32.const 2))))
                  (if (local.get $accum)
                    (then (local.set $v (f32.add (f32.load (local.get $dst)) (local.get $v)))))
                  (f32.store (local.get $dst) (local.get $v))
                  (local.set $col (i32.add (local.get $col) (i32.const 1)))
                  (br_if $col_loop (i32.lt_u (local.get $col) (local.get $nr))))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br_if $r_loop (i32.lt_u (local.get $r) (local.get $mr))))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $i_loop (i32.lt_u (local.get $i) (local.get $m))))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br_if $j_loop (i32.lt_u (local.get $j) (local.get $n))))
      (local.set $p (i32.add (local.get $p) (local.get $kc)))
      (br_if $k_loop (i32.lt_u (local.get $p) (local.get $k)))))
)
