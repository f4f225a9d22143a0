package licensing

import "math/big"

// add is the complete twisted Edwards addition law (a = -1), to check weak() against 8·P.
func add(a, b point) point {
	x1y2 := new(big.Int).Mul(a.x, b.y)
	y1x2 := new(big.Int).Mul(a.y, b.x)
	y1y2 := new(big.Int).Mul(a.y, b.y)
	x1x2 := new(big.Int).Mul(a.x, b.x)
	t := new(big.Int).Mul(curveD, new(big.Int).Mul(x1x2, y1y2))
	t.Mod(t, fieldP)
	dx := new(big.Int).Add(one, t)
	dy := new(big.Int).Sub(one, t)
	dx.Mod(dx, fieldP)
	dy.Mod(dy, fieldP)
	x := new(big.Int).Add(x1y2, y1x2)
	x.Mul(x, new(big.Int).ModInverse(dx, fieldP)).Mod(x, fieldP)
	y := new(big.Int).Add(y1y2, x1x2)
	y.Mul(y, new(big.Int).ModInverse(dy, fieldP)).Mod(y, fieldP)
	return point{x, y}
}
