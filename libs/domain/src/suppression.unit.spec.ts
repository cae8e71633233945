import { describe, expect, it } from 'vitest';
import { suppressionKey } from './suppression.js';

describe('suppressionKey', () => {
  it('lower-cases the domain and keeps the local part as given', () => {
    expect(suppressionKey('Ann.Smith@Example.COM')).toBe('Ann.Smith@example.com');
    expect(suppressionKey('ann.smith@example.com')).not.toBe(suppressionKey('Ann.Smith@example.com'));
    expect(suppressionKey(' bob@EXAMPLE.org. ')).toBe('bob@example.org');
  });

  it('compares internationalised domains by their ASCII form', () => {
    expect(suppressionKey('x@Bücher.example')).toBe('x@xn--bcher-kva.example');
  });
});
