// Dynamic loss scaling for mixed-precision training (Micikevicius et al. 2018, "Mixed Precision
// Training"; the policy of PyTorch's GradScaler, which the Hugging Face Trainer uses for fp16).
//
// f16 holds magnitudes from 2^-24 to 65504, and many activation gradients are smaller than the
// smallest: they would flush to zero. So the loss is multiplied by a scale S before the
// backward (every gradient then carries the factor S, exactly, S being a power of two) and the
// f32 gradients are divided by S again where AdamW reads them. Too large an S overflows some f16
// gradient to inf: that step is skipped (the weights and AdamW moments stay as they were) and S
// halves; after `growthInterval` steps in a row without overflow S doubles, so the scale tracks
// the largest one that fits.

export interface LossScaleState {
  scale: number;
  /** Steps without overflow since the scale last changed. */
  goodSteps: number;
}

/** A change of the scale, logged to train_log.jsonl. */
export interface LossScaleEvent {
  event: 'loss_scale';
  reason: 'overflow' | 'growth';
  from: number;
  to: number;
}

export class LossScaleError extends Error {
  override name = 'LossScaleError';
}

export class LossScaler {
  state: LossScaleState;

  constructor(
    init: number,
    readonly growthInterval: number,
  ) {
    if (!(init > 0) || !Number.isFinite(init)) throw new Error(`loss scale: the initial scale must be a positive number, got ${init}`);
    this.state = { scale: init, goodSteps: 0 };
  }

  get scale(): number {
    return this.state.scale;
  }

  /**
   * A step whose gradients (or loss) were not finite: halve the scale. Below 1 the scale would
   * shrink the gradients instead of guarding them, so an overflow there comes from the forward
   * itself: refused.
   */
  overflow(step: number): LossScaleEvent {
    const from = this.state.scale;
    const to = from / 2;
    if (to < 1) throw new LossScaleError(`--fp16: gradients overflow f16 at step ${step} even with loss scale ${from}; the f16 forward or backward overflows whatever the scale (train without --fp16)`);
    this.state = { scale: to, goodSteps: 0 };
    return { event: 'loss_scale', reason: 'overflow', from, to };
  }

  /** A step that was applied: count it, and double the scale after growthInterval of them. */
  good(): LossScaleEvent | null {
    const goodSteps = this.state.goodSteps + 1;
    if (goodSteps < this.growthInterval) {
      this.state = { ...this.state, goodSteps };
      return null;
    }
    const from = this.state.scale;
    this.state = { scale: from * 2, goodSteps: 0 };
    return { event: 'loss_scale', reason: 'growth', from, to: from * 2 };
  }

  /** Restore a checkpoint's state (checked, since it comes from a file). */
  restore(s: unknown, where: string): void {
    const o = s as Partial<LossScaleState> | null;
    if (!o || typeof o.scale !== 'number' || !(o.scale >= 1) || !Number.isFinite(o.scale) || !Number.isInteger(o.goodSteps) || (o.goodSteps as number) < 0) {
      throw new Error(`${where}: lossScale must be {scale >= 1, goodSteps >= 0}, got ${JSON.stringify(s)}`);
    }
    this.state = { scale: o.scale, goodSteps: o.goodSteps as number };
  }
}
