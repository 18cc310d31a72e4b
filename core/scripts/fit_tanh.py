import numpy as np
X=9.0
x=np.linspace(1e-6,X,200001)
t=x*x
y=np.tanh(x)
def fit(np_,nq,iters=30):
    w=np.ones_like(x)
    for it in range(iters):
        # unknowns p0..p_{np-1} (x*t^k), q1..q_nq (t^k)
        A=np.hstack([ (x*t**k)[:,None] for k in range(np_)] + [ (-y*t**k)[:,None] for k in range(1,nq+1)])
        b=y.copy()
        sol,*_=np.linalg.lstsq(A*w[:,None],b*w,rcond=None)
        p=sol[:np_]; q=np.concatenate([[1.0],sol[np_:]])
        P=sum(p[k]*x*t**k for k in range(np_)); Q=sum(q[k]*t**k for k in range(nq+1))
        err=P/Q-y
        w=w*(np.abs(err)+1e-12)**0.5; w/=w.mean()
    return p,q,np.abs(err).max()
for np_,nq in [(4,3),(5,3),(6,3),(5,4)]:
    p,q,e=fit(np_,nq)
    # f32 eval
    xf=np.linspace(0,X,400001).astype(np.float32); tf=xf*xf
    pf=[np.float32(v) for v in p]; qf=[np.float32(v) for v in q]
    P=np.float32(0); 
    Pv=np.zeros_like(xf)+pf[-1]
    for k in range(len(pf)-2,-1,-1): Pv=Pv*tf+pf[k]
    Pv=Pv*xf
    Qv=np.zeros_like(xf)+qf[-1]
    for k in range(len(qf)-2,-1,-1): Qv=Qv*tf+qf[k]
    r=(Pv/Qv).astype(np.float32)
    ef=np.abs(r.astype(np.float64)-np.tanh(xf.astype(np.float64))).max()
    print(np_,nq,"f64 fit err",e,"f32 eval err",ef, "at X", 1-np.tanh(X))
    print(" p",[repr(float(v)) for v in pf]); print(" q",[repr(float(v)) for v in qf])
