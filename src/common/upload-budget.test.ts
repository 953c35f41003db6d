import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HELD_FILES_MAX, UploadBudget } from './upload-budget.ts';

describe('UploadBudget', () => {
  it('gives the same pool for the same PoolSize, and another budget its own', () => {
    const size = { count: 2, size: 1024 };
    const budget = new UploadBudget();
    assert.equal(budget.pool(size), budget.pool(size));
    assert.notEqual(budget.pool(size), budget.pool({ count: 2, size: 1024 }), 'a pool per PoolSize');
    assert.notEqual(new UploadBudget().pool(size), budget.pool(size));
  });

  it(`lets ${HELD_FILES_MAX} files be held at once, one more once one is let go, each budget its own`, () => {
    const budget = new UploadBudget();
    for (let i = 0; i < HELD_FILES_MAX; i++) assert.equal(budget.holdFile(), true);
    assert.equal(budget.holdFile(), false);
    assert.equal(new UploadBudget().holdFile(), true, 'another budget (node, test) holds its own');
    budget.letFileGo();
    assert.equal(budget.holdFile(), true);
    assert.equal(budget.holdFile(), false);
  });
});
